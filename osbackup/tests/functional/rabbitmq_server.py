"""A throw-away RabbitMQ node for tests that stop the broker.

Stopping the machine's shared broker would break every other user of it
(other test runs, benchmarks), so broker outages are played on a private
node: its own name, loopback ports, data, logs and Erlang cookie under a
temporary directory, no plugins. The shared epmd is used, as any node on
the machine does.
"""

import os
import shutil
import socket
import subprocess
import uuid

RABBIT_BIN = '/usr/lib/rabbitmq/bin'
START_TIMEOUT = 90


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(('127.0.0.1', 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def available() -> str | None:
    """Why no private node can be started here, or None."""
    if not os.path.isfile(os.path.join(RABBIT_BIN, 'rabbitmq-server')):
        return ('RabbitMQ server scripts not found in %s (apt-get install '
                'rabbitmq-server)' % RABBIT_BIN)
    return None


class PrivateBroker:
    """A RabbitMQ node on a loopback port of its own, data in ``top``."""

    def __init__(self, top):
        self.top = top
        self.node = 'osbackup-ft-%s@localhost' % uuid.uuid4().hex[:8]
        self.port, dist = _free_ports(2)
        self.url = 'rabbit://guest:guest@127.0.0.1:%d/' % self.port
        os.makedirs(top, exist_ok=True)
        with open(os.path.join(top, 'enabled_plugins'), 'w') as f:
            f.write('[].\n')
        open(os.path.join(top, 'rabbitmq.conf'), 'w').close()
        self.env = dict(
            os.environ, HOME=top, RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS='127.0.0.1',
            RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_DIST_PORT=str(dist),
            RABBITMQ_MNESIA_BASE=os.path.join(top, 'mnesia'),
            RABBITMQ_LOG_BASE=os.path.join(top, 'log'),
            RABBITMQ_PID_FILE=os.path.join(top, 'pid'),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(top,
                                                       'enabled_plugins'),
            RABBITMQ_CONFIG_FILE=os.path.join(top, 'rabbitmq'),
            RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(top,
                                                       'advanced.config'),
            RABBITMQ_PLUGINS_EXPAND_DIR=os.path.join(top, 'plugins'))
        self.started = False

    def ctl(self, *argv, check=True, timeout=120):
        """rabbitmqctl against this node only."""
        return subprocess.run(
            [os.path.join(RABBIT_BIN, 'rabbitmqctl'), '-q', '-n', self.node]
            + list(argv), check=check, capture_output=True, text=True,
            timeout=timeout, env=self.env)

    def start(self):
        subprocess.run([os.path.join(RABBIT_BIN, 'rabbitmq-server'),
                        '-detached'], check=True, env=self.env,
                       capture_output=True, timeout=60)
        self.started = True
        done = self.ctl('wait', self.env['RABBITMQ_PID_FILE'], '--timeout',
                        str(START_TIMEOUT), check=False,
                        timeout=START_TIMEOUT + 30)
        if done.returncode != 0:
            raise RuntimeError('private RabbitMQ node did not start: %s%s'
                               % (done.stderr[-2000:], self.log()))

    def stop_app(self):
        """The outage: the node stops serving, its queues are gone."""
        self.ctl('stop_app')

    def start_app(self):
        self.ctl('start_app')

    def stop(self):
        if self.started:
            self.ctl('stop', check=False)
            self.started = False
        if not os.environ.get('OSBACKUP_TEST_KEEP'):
            shutil.rmtree(self.top, ignore_errors=True)

    def log(self):
        path = os.path.join(self.top, 'log', '%s.log' % self.node)
        try:
            with open(path) as f:
                return f.read()[-2000:]
        except OSError:
            return '(no log)'

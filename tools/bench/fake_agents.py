#!/usr/bin/env python3
"""Host many simulated osbackup agents in one process (fan-out benchmark).

Each simulated agent is a real oslo.messaging RPC server on topic
``osbackup-agent``, server ``<prefix><i>``, with one dispatch thread
(``start(override_pool_size=1)``: 64 threads per server would swamp the
process, see shared/MESSAGING.md). The server is oslo.messaging's own
(``get_rpc_server``, no osbackup wrapper), so it also takes the raw
baseline's plain messages; osbackup's casts reach it as they are (where
osbackup signs its messages, a simulated agent does not check the seal:
that is agent-side work, outside what the benchmark measures). Its
endpoint has two methods:

``run_task(context, task)``
    what osbackup's conductor casts: it reports
    ``task_finished(SUCCEEDED)`` with one small fake artifact at once,
    through osbackup.conductor.rpcapi.ConductorAPI, preceded by
    ``task_started`` only with ``[agent] start_report_delay = 0`` (a real
    agent reports the start of a task this quick only then);
``ping(context, seq, payload)``
    the raw oslo.messaging baseline: it casts ``pong`` back to the
    benchmark's listener on topic ``osbackup-bench-pong`` with a plain
    oslo.messaging client.

Every simulated agent sends one heartbeat at start so the conductor knows
it (``info={'drivers': ['nova'], 'services': ['nova']}``); then the
process prints ``ready`` and serves until SIGTERM, when it exits at once.
All servers of the process share one transport, whose sender pool
(``[oslo_messaging_rabbit] rpc_conn_pool_size`` in the config file) run.py
sizes to the number of servers, so no cast waits for or overflows the
pool.
"""

import argparse
import os
import signal
import sys
import threading

import oslo_messaging as messaging
from oslo_messaging.rpc import dispatcher

from osbackup.conductor import rpcapi as conductor_rpcapi
import osbackup.conf
from osbackup import rpc
from osbackup import version

PONG_TOPIC = 'osbackup-bench-pong'


def fake_artifact(host, backup_id):
    """About what a small nova file-set artifact looks like."""
    return {'name': 'nova', 'kind': 'files',
            'location': '/var/lib/osbackup/backups/%s/%s/nova/nova.tar.zst'
                        % (host, backup_id),
            'size': 123456, 'sha256': '5e' * 32,
            'meta': {
                'paths': ['etc/nova', 'var/lib/nova', 'var/log/nova'],
                'excludes': ['var/lib/nova/instances'], 'files': 42,
                'bytes': 345678, 'warnings': 0}}


class SimulatedAgent:
    target = messaging.Target(version='1.0')

    def __init__(self, host, conductor, pong):
        self.host = host
        self.conductor = conductor
        self.pong = pong

    def run_task(self, context, task, **kwargs):
        ctxt = rpc.admin_context()
        if not osbackup.conf.CONF.agent.start_report_delay:
            self.conductor.task_started(ctxt, task['id'], self.host)
        self.conductor.task_finished(
            ctxt, task['id'], self.host, 'SUCCEEDED',
            {'artifacts': [fake_artifact(self.host, task['backup_id'])]},
            None)

    def ping(self, context, seq, payload):
        self.pong.cast(raw_context(), 'pong', host=self.host, seq=seq,
                       payload=fake_artifact(self.host, seq))


def raw_context():
    """The context dict of a raw message, as big as osbackup's."""
    return rpc.admin_context().to_dict()


def raw_server(topic, server, endpoints):
    """A plain oslo.messaging RPC server on osbackup's transport."""
    return messaging.get_rpc_server(
        rpc.TRANSPORT, messaging.Target(topic=topic, server=server),
        endpoints, serializer=messaging.NoOpSerializer(),
        access_policy=dispatcher.DefaultRPCAccessPolicy)


def raw_client(topic):
    return messaging.get_rpc_client(
        rpc.TRANSPORT, messaging.Target(topic=topic, version='1.0'),
        serializer=messaging.NoOpSerializer())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config-file', required=True)
    parser.add_argument('--prefix', required=True)
    parser.add_argument('--first', type=int, default=0)
    parser.add_argument('--count', type=int, default=1)
    parser.add_argument('--no-heartbeat', action='store_true')
    args = parser.parse_args(argv)

    conf = osbackup.conf.CONF
    rpc.set_defaults(conf)
    conf(['--config-file', args.config_file], project='osbackup',
         default_config_files=[])
    rpc.init(conf)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    conductor = conductor_rpcapi.ConductorAPI(conf)
    pong = raw_client(PONG_TOPIC)
    servers = []
    hosts = ['%s%d' % (args.prefix, i)
             for i in range(args.first, args.first + args.count)]
    for host in hosts:
        server = raw_server(rpc.AGENT_TOPIC, host,
                            [SimulatedAgent(host, conductor, pong)])
        server.start(override_pool_size=1)
        servers.append(server)
    if not args.no_heartbeat:
        info = {'drivers': ['nova'], 'services': ['nova']}
        for host in hosts:
            conductor.heartbeat(rpc.admin_context(), host,
                                version.version_string(), info)
    print('ready', flush=True)
    while not stop.wait(1):
        pass
    # Stopping hundreds of servers one by one takes minutes; the broker
    # drops their connections, and run.py deletes the vhost and queues.
    os._exit(0)


if __name__ == '__main__':
    sys.exit(main())

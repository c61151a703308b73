"""A throw-away MariaDB server for tests and benchmarks.

Physical backups copy and replace a whole server's data directory, so they
are exercised on a private ``mariadbd`` under a temporary directory (a
socket, no TCP port), never on the system server or /var/lib/mysql.
"""

import os
import signal
import subprocess
import time

from osbackup.tests.functional import host_tools

START_TIMEOUT = 60


class PrivateServer:
    """A throw-away mariadbd on a socket in ``top`` (no TCP port).

    Raises unittest.SkipTest when the MariaDB server cannot be installed.
    """

    def __init__(self, top, extra_args=()):
        self.commands = host_tools.require(host_tools.MARIADB_SERVER)
        self.top = top
        self.extra_args = list(extra_args)
        self.datadir = os.path.join(top, 'data')
        self.socket = os.path.join(top, 'mysqld.sock')
        self.proc = None
        # A private tmpdir: servers installed side by side in the shared
        # /tmp have lost each other's temporary tables.
        self.tmpdir = os.path.join(top, 'tmp')
        os.makedirs(self.tmpdir, exist_ok=True)
        done = subprocess.run(
            [self.commands['mariadb-install-db'], '--no-defaults',
             '--datadir=%s' % self.datadir, '--tmpdir=%s' % self.tmpdir,
             '--auth-root-authentication-method=normal'],
            capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError('mariadb-install-db failed: %s%s' % (
                done.stdout[-2000:], done.stderr[-2000:]))

    def start(self):
        args = [self.commands['mariadbd'], '--no-defaults',
                '--datadir=%s' % self.datadir,
                '--socket=%s' % self.socket, '--skip-networking',
                '--tmpdir=%s' % self.tmpdir,
                '--innodb-log-file-size=16M', '--innodb-buffer-pool-size=32M',
                '--log-bin=%s' % os.path.join(self.top, 'binlog'),
                '--server-id=1',
                '--pid-file=%s' % os.path.join(self.top, 'mysqld.pid'),
                '--log-error=%s' % os.path.join(self.top, 'error.log')]
        args += self.extra_args
        if os.geteuid() == 0:
            args.append('--user=root')
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('mariadbd exited: %s' % self.error_log())
            if subprocess.run([self.commands['mariadb-admin'],
                               '--no-defaults', '-uroot',
                               '-S', self.socket, 'ping'],
                              capture_output=True).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError('mariadbd did not start: %s' % self.error_log())

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def error_log(self):
        try:
            with open(os.path.join(self.top, 'error.log')) as f:
                return f.read()[-2000:]
        except OSError:
            return '(no error log)'

    def sql(self, statement):
        out = subprocess.run(
            [self.commands['mariadb'], '--no-defaults', '-uroot',
             '-S', self.socket, '--batch', '--skip-column-names',
             '-e', statement],
            capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError('%s: %s' % (statement, out.stderr))
        return out.stdout.strip()

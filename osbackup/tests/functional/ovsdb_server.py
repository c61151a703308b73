"""A private ovsdb-server on a unix socket in a temporary directory.

It serves one database file created from an OVN schema (Debian's
``ovn-central``/``ovn-common``); nothing of the machine's own OVN, if
any, is touched.
"""

import os
import signal
import subprocess
import time
import unittest

from osbackup.tests.functional import host_tools

NB_SCHEMA = '/usr/share/ovn/ovn-nb.ovsschema'
START_TIMEOUT = 20


class OvsdbServer:
    """ovsdb-server serving ``db`` on ``<top>/<name>.sock``."""

    def __init__(self, top, db, schema=NB_SCHEMA, name='nb'):
        self.tools = host_tools.require(host_tools.OVN)
        if not os.path.isfile(schema):
            raise unittest.SkipTest(
                'SKIPPED, NOT TESTED: the OVN driver tests need the schema '
                '%s (package ovn-common)' % schema)
        self.top = top
        self.db = db
        self.schema = schema
        self.sock = os.path.join(top, '%s.sock' % name)
        self.ctl = os.path.join(top, '%s.ctl' % name)
        self.pidfile = os.path.join(top, '%s.pid' % name)
        self.log = os.path.join(top, '%s.log' % name)
        self.connection = 'unix:%s' % self.sock
        os.makedirs(os.path.dirname(db), exist_ok=True)

    def create(self):
        subprocess.run([self.tools['ovsdb-tool'], 'create', self.db,
                        self.schema], check=True, capture_output=True,
                       timeout=60)

    def create_cluster(self):
        """A one-member clustered (raft) database instead."""
        subprocess.run([self.tools['ovsdb-tool'], 'create-cluster', self.db,
                        self.schema, 'unix:%s' % os.path.join(
                            self.top, 'raft.sock')],
                       check=True, capture_output=True, timeout=60)

    def start(self):
        subprocess.run([self.tools['ovsdb-server'],
                        '--remote=punix:%s' % self.sock,
                        '--unixctl=%s' % self.ctl,
                        '--pidfile=%s' % self.pidfile, '--detach',
                        '--no-chdir', '--log-file=%s' % self.log, self.db],
                       check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(self.sock):
            if time.monotonic() > deadline:
                raise RuntimeError('ovsdb-server did not open %s within '
                                   '%d s' % (self.sock, START_TIMEOUT))
            time.sleep(0.05)

    def stop(self):
        try:
            with open(self.pidfile) as f:
                pid = int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        for path in (self.sock, self.pidfile):
            if os.path.exists(path):
                os.unlink(path)

    def nbctl(self, *argv) -> str:
        return subprocess.run(
            [self.tools['ovn-nbctl'], '--db=%s' % self.connection] +
            list(argv), check=True, capture_output=True, text=True,
            timeout=60).stdout

    def switches(self) -> list[str]:
        """Logical switches with their ports, sorted, to compare states."""
        out = []
        for name in self.nbctl('--bare', '--columns=name', 'list',
                               'Logical_Switch').split():
            ports = self.nbctl('lsp-list', name).split('\n')
            out.append((name, sorted(p.split()[-1] for p in ports if p)))
        return sorted(out)

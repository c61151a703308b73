"""A throw-away three-node Galera cluster on loopback, for tests and benches.

Every node is a private ``mariadbd --no-defaults`` (see mariadb_server.py)
with a datadir under one temporary directory, a socket, its own TCP port
and its own Galera ports (group communication, IST, SST), all on
127.0.0.1: the machine's shared MariaDB on 3306 is never touched. The first
node bootstraps the cluster (``--wsrep-new-cluster``), the others join it
by SST (mariabackup) and the cluster is up once every node is ``Synced`` with a
cluster size of three. Teardown kills every node.

Raises unittest.SkipTest when galera-4 or the MariaDB server is missing.
"""

import json
import os
import signal
import socket
import subprocess
import time
import unittest

from osbackup.tests.functional import galera_unit
from osbackup.tests.functional import host_tools
from osbackup.tests.functional import mariadb_server

PROVIDER = os.environ.get('OSBACKUP_TEST_GALERA_PROVIDER',
                          '/usr/lib/galera/libgalera_smm.so')
SOCAT = host_tools.Tool(commands=('socat',), package='socat',
                        needed_by='the Galera cluster tests (SST)')
SYNC_TIMEOUT = 120
CLUSTER_NAME = 'osbackup_test'


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(('127.0.0.1', 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Node(mariadb_server.PrivateServer):
    """One member: a private server with wsrep on and ports of its own."""

    def __init__(self, top, name, ports, peers):
        self.name = name
        self.port, self.gcomm_port, self.ist_port, self.sst_port = ports
        self.peers = peers
        super().__init__(top)
        self.bootstrap = False

    def galera_args(self) -> list[str]:
        provider_options = ';'.join([
            'gmcast.listen_addr=tcp://127.0.0.1:%d' % self.gcomm_port,
            'ist.recv_addr=127.0.0.1:%d' % self.ist_port,
            'base_port=%d' % self.gcomm_port,
            # Small caches: three nodes on a shared test machine.
            'gcache.size=32M', 'evs.inactive_timeout=PT15S',
            'evs.suspect_timeout=PT5S'])
        return [
            '--wsrep-on=ON', '--wsrep-provider=%s' % PROVIDER,
            '--wsrep-cluster-name=%s' % CLUSTER_NAME,
            '--wsrep-cluster-address=gcomm://%s' % ','.join(
                '127.0.0.1:%d' % p for p in self.peers),
            '--wsrep-node-name=%s' % self.name,
            '--wsrep-node-address=127.0.0.1:%d' % self.gcomm_port,
            '--wsrep-node-incoming-address=127.0.0.1:%d' % self.port,
            '--wsrep-sst-receive-address=127.0.0.1:%d' % self.sst_port,
            '--wsrep-provider-options=%s' % provider_options,
            # mariabackup SST: an rsync daemon started by root drops to
            # "nobody", who cannot enter a private datadir.
            '--wsrep-sst-method=mariabackup', '--wsrep-sst-auth=root:',
            '--binlog-format=ROW',
            '--default-storage-engine=InnoDB',
            '--innodb-autoinc-lock-mode=2',
            '--bind-address=127.0.0.1', '--port=%d' % self.port]

    def argv(self, *extra: str) -> list[str]:
        """The node's mariadbd command line (a service manager runs it)."""
        args = [self.commands['mariadbd'], '--no-defaults',
                '--datadir=%s' % self.datadir, '--socket=%s' % self.socket,
                '--tmpdir=%s' % self.tmpdir,
                # No --innodb-buffer-pool-size: the SST script hands it
                # to mariadb-backup, which refuses it.
                '--innodb-log-file-size=16M',
                '--log-bin=%s' % os.path.join(self.top, 'binlog'),
                '--server-id=1', '--log-slave-updates',
                '--pid-file=%s' % self.pid_file,
                '--log-error=%s' % os.path.join(self.top, 'error.log')]
        args += self.galera_args() + list(extra)
        if os.geteuid() == 0:
            args.append('--user=root')
        return args

    @property
    def pid_file(self) -> str:
        return os.path.join(self.top, 'mysqld.pid')

    def start(self, new_cluster: bool = False, wait: bool = True):
        """Start mariadbd; ``new_cluster`` bootstraps a cluster with it."""
        extra = ['--wsrep-new-cluster'] if new_cluster else []
        self.proc = subprocess.Popen(self.argv(*extra),
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        if wait:
            self.wait_ping()

    def wait_ping(self, timeout: float = SYNC_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError('%s exited: %s' % (self.name,
                                                      self.error_log()))
            if self.ping():
                return
            time.sleep(0.2)
        raise RuntimeError('%s did not start: %s' % (self.name,
                                                     self.error_log()))

    def ping(self) -> bool:
        return subprocess.run(
            [self.commands['mariadb-admin'], '--no-defaults', '-uroot',
             '-S', self.socket, 'ping'], capture_output=True).returncode == 0

    def status(self) -> dict:
        """wsrep_* status variables, {} if the server does not answer."""
        try:
            rows = self.sql("SHOW GLOBAL STATUS LIKE 'wsrep\\_%'")
        except RuntimeError:
            return {}
        return dict(r.split('\t', 1) for r in rows.splitlines() if '\t' in r)

    def kill(self) -> None:
        """SIGKILL the server (a crash: no clean shutdown).

        Also the one its unit started (galera_unit.py), if any.
        """
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        pid = galera_unit.running(self.top)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while galera_unit.alive(pid):
                time.sleep(0.1)

    def as_unit(self) -> str:
        """The node as unit ``mariadb`` (galera_unit.py): its directory."""
        with open(os.path.join(self.top, 'argv.json'), 'w') as f:
            json.dump(self.argv(), f)
        return self.top


class GaleraCluster:
    """Three (or ``size``) Galera nodes under ``top``."""

    def __init__(self, top: str, size: int = 3):
        host_tools.require(host_tools.MARIADB_BACKUP)
        host_tools.require(SOCAT)
        if not os.path.exists(PROVIDER):
            raise unittest.SkipTest(
                'SKIPPED, NOT TESTED: the Galera cluster tests need the '
                'Galera provider %s (package galera-4). Install it with '
                '"apt-get install galera-4" to run these tests.' % PROVIDER)
        ports = free_ports(4 * size)
        groups = [ports[4 * i:4 * i + 4] for i in range(size)]
        peers = [g[1] for g in groups]
        self.nodes = [Node(os.path.join(top, 'node%d' % i), 'node%d' % i,
                           g, peers) for i, g in enumerate(groups)]

    def start(self) -> None:
        """Bootstrap the first node, join the others, wait until Synced."""
        first, *others = self.nodes
        first.start(new_cluster=True)
        self.wait_synced([first], 1)
        for node in others:
            # One joiner at a time: the donor serves one SST at once.
            node.start()
            self.wait_synced(self.nodes[:self.nodes.index(node) + 1],
                             self.nodes.index(node) + 1)

    def wait_synced(self, nodes=None, size=None,
                    timeout: float = SYNC_TIMEOUT) -> None:
        """Wait until every node is Synced in a cluster of ``size``."""
        nodes = self.nodes if nodes is None else nodes
        size = len(self.nodes) if size is None else size
        deadline = time.monotonic() + timeout
        seen = {}
        while time.monotonic() < deadline:
            seen = {n.name: n.status() for n in nodes}
            if all(s.get('wsrep_local_state_comment') == 'Synced' and
                   s.get('wsrep_cluster_size') == str(size) and
                   s.get('wsrep_ready') == 'ON' for s in seen.values()):
                return
            time.sleep(0.3)
        raise RuntimeError('Galera nodes not Synced in a cluster of %d '
                           'within %d s: %s' % (size, timeout, {
                               name: (s.get('wsrep_local_state_comment'),
                                      s.get('wsrep_cluster_size'))
                               for name, s in seen.items()}))

    def stop(self) -> None:
        """Kill every node (teardown: nothing of the cluster survives)."""
        for node in self.nodes:
            node.kill()

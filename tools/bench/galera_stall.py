#!/usr/bin/env python3
"""Write stall on a Galera cluster while another member is copied.

Starts a private three-node cluster on loopback (the functional tests'
galera_cluster.py: nothing of the machine's shared MariaDB is touched),
loads ``--rows`` rows so that a physical copy takes a while, then runs
single-row autocommit INSERTs against node0 (the write endpoint) for
``--seconds`` in each phase, one after another in the same run:

* reference: no backup running;
* desynced: the mariabackup driver copying node1 again and again, as
  osbackup does it (``wsrep_desync=ON`` for the copy);
* not desynced (labelled): the same copies with the desync switched off,
  to show what the desync buys;
* desynced, niced: the copies with ``[mariabackup] nice = 19`` and
  ``ionice_class = idle`` (the operator's knob against CPU and I/O
  contention);
* the same, throttled: also ``[mariabackup] throttle = 2`` (at most two
  10 MB read-write pairs a second while InnoDB files are copied).

Per phase it also prints where the time went: the share of the phase
node0 spent paused by flow control (``wsrep_flow_control_paused_ns``),
and the CPU time (user+sys, from getrusage) of the mariadb-backup
processes and of this process (the stream's compression and the
writer), which on a shared machine is what the copy takes away from the
servers.

It prints p50/p99/max insert latency per phase and the p99 ratio against
the reference (the issue's goal: 1.5x or less). Nothing asserts a timing.
"""

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from osbackup.drivers import base  # noqa: E402
from osbackup.drivers import galera  # noqa: E402
from osbackup.drivers import mariabackup  # noqa: E402
from osbackup.storage import local  # noqa: E402
from osbackup.tests import base as test_base  # noqa: E402
from osbackup.tests.functional import galera_cluster  # noqa: E402

try:
    import pymysql
except ImportError:     # pragma: no cover - a requirement of osbackup
    sys.exit('pymysql is needed')


def connect(node):
    return pymysql.connect(unix_socket=node.socket, user='root',
                           database='bench', autocommit=True)


def writes(node, seconds: float) -> list:
    """Latencies (s) of single-row INSERTs on ``node`` for ``seconds``."""
    conn = connect(node)
    out = []
    end = time.monotonic() + seconds
    with conn.cursor() as cur:
        while time.monotonic() < end:
            t = time.perf_counter()
            cur.execute("INSERT INTO w (v) VALUES ('x')")
            out.append(time.perf_counter() - t)
    conn.close()
    return out


def flow_paused(node) -> int:
    """Nanoseconds ``node`` has spent paused by flow control."""
    return int(node.status().get('wsrep_flow_control_paused_ns', 0))


def cpu_times() -> tuple:
    """CPU s (user+sys) of ended children (mariadb-backup), and ours."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    return (kids.ru_utime + kids.ru_stime, own.ru_utime + own.ru_stime)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


class Copier(threading.Thread):
    """Physical copies of ``node`` in a loop until stopped."""

    def __init__(self, cluster, node, store, desync: bool, options=None):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.node, self.store, self.desync = node, store, desync
        self.options = options or {}
        self.stop = threading.Event()
        self.copies = 0
        self.error = None

    def run(self):
        conf = test_base.CONF
        conf.set_override('socket', self.node.socket, group='mysql')
        conf.set_override('enabled', True, group='mariabackup')
        for name, default in (('nice', 0), ('ionice_class', 'none'),
                              ('throttle', 0)):
            conf.set_override(name, self.options.get(name, default),
                              group='mariabackup')
        storage = local.LocalStorage(conf, path=self.store)
        driver = mariabackup.MariaBackupDriver(conf)
        off = contextlib.nullcontext() if self.desync else mock.patch.object(
            galera.Desync, 'during',
            lambda self, state, host: contextlib.nullcontext())
        try:
            with off:
                while not self.stop.is_set():
                    # A node just put back in sync is Donor/Desynced until
                    # it has applied what it queued: refused until then.
                    self.cluster.wait_synced([self.node], 3)
                    ctx = base.TaskContext(
                        task_id='t', backup_id=str(self.copies),
                        host=self.node.name, service='mariabackup',
                        storage=storage)
                    for art in driver.backup(ctx):
                        storage.delete(art.location)
                    self.copies += 1
        except Exception as exc:
            self.error = exc


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rows', type=int, default=400000)
    parser.add_argument('--seconds', type=float, default=20)
    parser.add_argument('--workdir', default='/var/tmp')
    args = parser.parse_args()
    test_base.CONF([], project='osbackup', default_config_files=[])
    top = tempfile.mkdtemp(prefix='osbackup-galera-bench-',
                           dir=args.workdir)
    test_base.CONF.set_override('state_path', os.path.join(top, 'state'))
    cluster = galera_cluster.GaleraCluster(os.path.join(top, 'cluster'))
    try:
        cluster.start()
        node0, node1, _node2 = cluster.nodes
        node0.sql('CREATE DATABASE bench; CREATE TABLE bench.w (id BIGINT '
                  'AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10)); CREATE '
                  'TABLE bench.fill (id INT PRIMARY KEY, pad CHAR(200))')
        node0.sql('SET SESSION max_recursive_iterations = %d; INSERT INTO '
                  'bench.fill WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL '
                  'SELECT n + 1 FROM s WHERE n < %d) SELECT n, '
                  'REPEAT("p", 200) FROM s' % (args.rows, args.rows))
        cluster.wait_synced()
        writes(node0, 2)    # warm up
        rows = []
        niced = {'nice': 19, 'ionice_class': 'idle'}
        for label, desync, options in (
                ('reference: no backup', None, None),
                ('backup of node1, desynced', True, None),
                ('backup of node1, NOT desynced', False, None),
                ('desynced, nice 19, ionice idle', True, niced),
                ('the same, throttle 2 (20 MB/s)', True,
                 dict(niced, throttle=2))):
            copier = None
            if desync is not None:
                copier = Copier(cluster, node1, os.path.join(top, 'store'),
                                desync, options)
                copier.start()
                time.sleep(1)
            paused = flow_paused(node0)
            cpu = cpu_times()
            lat = writes(node0, args.seconds)
            paused = (flow_paused(node0) - paused) / 1e9 / args.seconds
            cpu = [b - a for a, b in zip(cpu, cpu_times())]
            if copier is not None:
                copier.stop.set()
                copier.join()
                if copier.error:
                    raise copier.error
            cluster.wait_synced()
            rows.append((label, len(lat), statistics.median(lat),
                         percentile(lat, 99), max(lat),
                         copier.copies if copier else 0, paused, cpu))
        ref_p99 = rows[0][3]
        print('Galera write stall on node0, %d rows in the cluster, %.0f s '
              'per phase' % (args.rows, args.seconds))
        print('load average at the end: %.1f %.1f %.1f' % os.getloadavg())
        print('%-32s %8s %8s %8s %8s %6s %9s %8s %8s %8s' % (
            'phase', 'inserts', 'p50 ms', 'p99 ms', 'max ms', 'copies',
            'p99 ratio', 'fc pause', 'mb cpu s', 'own cpu'))
        for label, n, p50, p99, worst, copies, paused, cpu in rows:
            print('%-32s %8d %8.2f %8.2f %8.1f %6d %8.2fx %7.1f%% %8.1f '
                  '%8.1f' % (label, n, p50 * 1e3, p99 * 1e3, worst * 1e3,
                             copies, p99 / ref_p99, paused * 100, cpu[0],
                             cpu[1]))
    finally:
        cluster.stop()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Benchmark of ``osbackup-manage backup check`` on a large catalogue.

Fills a catalogue on the MariaDB server (a database of its own, dropped
afterwards) and one in SQLite with ``--hosts`` x ``--services`` pairs and
``--days`` nightly backups of each (tasks and artifacts as the conductor
writes them), then
times, medians of ``--runs`` after one untimed run of each (warm):

* end to end: ``osbackup-manage backup check`` as an operator or Nagios
  runs it (a new process: imports, config, catalogue connection, query);
* the reference measured in the same run: ``osbackup-manage backup list
  --limit 1``, the cheapest command that also starts, connects and reads
  the catalogue, so the ratio is what the check costs beyond any command;
* in-process (labelled as such): ``Catalogue.backup_status`` plus the
  rule, without process start.

The issue's target is 1 s for 1000 hosts x 10 services end to end.
Nothing here asserts a timing.
"""

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import sqlalchemy as sa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from osbackup.db import api  # noqa: E402
from osbackup.db import models  # noqa: E402
from osbackup import freshness  # noqa: E402

DB_URL = os.environ.get('OSBACKUP_BENCH_DB_URL',
                        'mysql+pymysql://root@127.0.0.1:3306/')
SERVICES = ['mysql', 'nova', 'glance', 'keystone', 'cinder', 'swift',
            'neutron', 'placement', 'heat', 'octavia', 'barbican',
            'designate']


def fill(cat, hosts: int, services: int, days: int) -> int:
    """Insert the history; return the number of task rows."""
    now = datetime.datetime.utcnow().replace(microsecond=0)
    names = SERVICES[:services]
    host_names = ['compute-%04d' % i for i in range(hosts)]
    with cat.session() as s:
        s.execute(sa.insert(models.Agent), [
            {'host': h, 'version': 'bench', 'created_at': now,
             'last_heartbeat': now, 'info': {'services': names}}
            for h in host_names])
    count = 0
    for day in range(days, 0, -1):
        at = now - datetime.timedelta(days=day - 1, hours=2)
        with cat.session() as s:
            backup = models.Backup(uuid=str(uuid.uuid4()),
                                   status='SUCCEEDED', hosts=[],
                                   services=[], targets=['local'],
                                   created_at=at, finished_at=at)
            s.add(backup)
            s.flush()
            tasks, arts = [], []
            for h in host_names:
                for svc in names:
                    tid = str(uuid.uuid4())
                    # One pair in a hundred fails every night.
                    ok = hash((h, svc)) % 100 != 0
                    tasks.append({
                        'id': tid, 'backup_id': backup.id, 'kind': 'backup',
                        'host': h, 'service': svc, 'params': {},
                        'status': 'SUCCEEDED' if ok else 'FAILED',
                        'created_at': at, 'updated_at': at,
                        'started_at': at - datetime.timedelta(seconds=60),
                        'finished_at': at, 'expires_at': at,
                        'progress_bytes': 0, 'progress_files': 0})
                    if ok:
                        arts.append({
                            'backup_id': backup.id, 'task_id': tid,
                            'host': h, 'service': svc, 'name': svc,
                            'kind': 'files', 'status': 'available',
                            'location': '/x', 'size': 1 << 20,
                            'sha256': 'a' * 64, 'meta': {},
                            'created_at': at})
            s.execute(sa.insert(models.Task), tasks)
            s.execute(sa.insert(models.Artifact), arts)
            count += len(tasks)
    return count


def timed(argv) -> float:
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True)
    took = time.monotonic() - start
    if proc.returncode not in (0, 1, 2):
        raise SystemExit('%s failed (%d): %s' % (' '.join(argv),
                                                 proc.returncode,
                                                 proc.stderr))
    return took


def mariadb(prefix: str = 'osbackup_bench_check'):
    """(url, drop) of a new database on the MariaDB server."""
    name = '%s_%s' % (prefix, uuid.uuid4().hex[:8])
    admin = sa.create_engine(DB_URL)
    with admin.begin() as c:
        c.execute(sa.text('CREATE DATABASE %s' % name))

    def drop():
        with admin.begin() as c:
            c.execute(sa.text('DROP DATABASE IF EXISTS %s' % name))
    return DB_URL + name, drop


def bench(label: str, url: str, args) -> None:
    """Fill the catalogue at ``url`` and print the timings."""
    cat = api.Catalogue(url)
    cat.sync()
    start = time.monotonic()
    rows = fill(cat, args.hosts, args.services, args.days)
    print('%s catalogue: %d hosts x %d services x %d days = %d tasks '
          '(filled in %.1f s)' % (label, args.hosts, args.services,
                                  args.days, rows, time.monotonic() - start))
    with tempfile.NamedTemporaryFile('w', suffix='.conf') as conf:
        conf.write('[DEFAULT]\ntransport_url = rabbit://guest:guest@'
                   '127.0.0.1:5672/\n[database]\nconnection = %s\n' % url)
        conf.flush()
        manage = [sys.executable, '-m', 'osbackup.cmd.manage',
                  '--config-file', conf.name]
        check, ref = [], []
        # One untimed run of each first: warm caches, as Nagios sees it.
        for i in range(args.runs + 1):
            took = timed(manage + ['backup', 'list', '--limit', '1'])
            if i:
                ref.append(took)
            took = timed(manage + ['backup', 'check'])
            if i:
                check.append(took)
    inproc = []
    limits = freshness.Thresholds(26 * 3600, 48 * 3600)
    for _ in range(args.runs):
        start = time.monotonic()
        report = freshness.evaluate(cat.backup_status(),
                                    datetime.datetime.utcnow(), limits)
        inproc.append(time.monotonic() - start)
    cat.engine.dispose()
    c, r, i = (statistics.median(x) for x in (check, ref, inproc))
    print('%-52s %8s' % ('%s, work (median of %d)' % (label, args.runs),
                         'seconds'))
    print('%-52s %8.3f' % ('backup check, end to end (CLI)', c))
    print('%-52s %8.3f' % ('reference: backup list --limit 1 (CLI)', r))
    print('%-52s %8.3f' % ('in-process: backup_status + rule', i))
    print('ratio check / reference: %.2fx; check beyond the reference: '
          '%.3f s; items judged: %d (%s)\n'
          % (c / r, c - r, len(report.items), report.state))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hosts', type=int, default=1000)
    parser.add_argument('--services', type=int, default=10)
    parser.add_argument('--days', type=int, default=7,
                        help='Nightly backups of history per pair.')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--db', choices=['mariadb', 'sqlite', 'both'],
                        default='both', help='Catalogue database(s).')
    args = parser.parse_args(argv)

    if args.db in ('mariadb', 'both'):
        url, drop = mariadb()
        try:
            bench('MariaDB', url, args)
        finally:
            drop()
    if args.db in ('sqlite', 'both'):
        with tempfile.TemporaryDirectory() as tmp:
            bench('SQLite', 'sqlite:///%s/catalogue.sqlite' % tmp, args)


if __name__ == '__main__':
    main()

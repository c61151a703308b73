#!/usr/bin/env python3
"""Benchmark of ``osbackup-manage``'s start: what every command costs first.

Times, medians of ``--runs`` new processes each, warm (after one untimed
run of each):

* the reference measured in the same run: ``python -c pass``, the
  interpreter's own start;
* ``osbackup-manage --help``: parsing and the usage, no catalogue;
* ``osbackup-manage agent list`` of a fleet (a ``transport_url`` set, so
  no local services start) on an SQLite catalogue and, when the server
  answers, on a MariaDB one (a database of its own, dropped afterwards).

The issue's targets on this machine: ``--help`` 0.2 s, ``agent list``
0.3 s. Nothing here asserts a timing.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import sqlalchemy as sa  # noqa: E402

import check  # noqa: E402  (tools/bench/check.py)

MANAGE = [sys.executable, '-m', 'osbackup.cmd.manage']


def timed(argv, runs: int) -> float:
    """Median seconds of ``argv`` run ``runs`` times after a warm-up."""
    took = []
    for i in range(runs + 1):
        start = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True)
        if i:
            took.append(time.monotonic() - start)
        if proc.returncode:
            raise SystemExit('%s failed (%d): %s' % (
                ' '.join(argv), proc.returncode, proc.stderr))
    return statistics.median(took)


def fleet_config(directory: str, connection: str) -> str:
    """A fleet's config file naming ``connection``, its schema synced."""
    path = os.path.join(directory, 'osbackup-%s.conf' % uuid.uuid4().hex[:6])
    with open(path, 'w') as f:
        f.write('[DEFAULT]\ntransport_url = rabbit://guest:guest@'
                '127.0.0.1:5672/\n[database]\nconnection = %s\n' % connection)
    subprocess.run(MANAGE + ['--config-file', path, 'db', 'sync'],
                   check=True, capture_output=True)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=7)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        work = [('reference: python -c pass', [sys.executable, '-c',
                                               'pass']),
                ('osbackup-manage --help', MANAGE + ['--help'])]
        sqlite = fleet_config(tmp, 'sqlite:///%s/catalogue.sqlite' % tmp)
        work.append(('osbackup-manage agent list (SQLite)',
                     MANAGE + ['--config-file', sqlite, 'agent', 'list']))
        try:
            maria = check.mariadb('osbackup_bench_start')
        except sa.exc.OperationalError as exc:
            print('MariaDB skipped: %s' % exc.orig)
            maria = None
        try:
            if maria:
                conf = fleet_config(tmp, maria[0])
                work.append(('osbackup-manage agent list (MariaDB)',
                             MANAGE + ['--config-file', conf, 'agent',
                                       'list']))
            results = [(label, timed(cmd, args.runs)) for label, cmd in work]
        finally:
            if maria:
                maria[1]()
    base = results[0][1]
    print('%-44s %8s %8s %8s' % ('command (median of %d, warm)' % args.runs,
                                 'seconds', 'x pass', '- pass'))
    for label, took in results:
        print('%-44s %8.3f %7.1fx %8.3f' % (label, took, took / base,
                                            took - base))


if __name__ == '__main__':
    main()

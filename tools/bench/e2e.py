#!/usr/bin/env python3
"""End to end: backup and restore as the operator waits for them.

A real fleet (conductor and agent processes on RabbitMQ, catalogue on
MariaDB; tests/functional/fleet.py) holds a nova tree on its agent
(``--files`` small files and ``--big`` large ones under
``<root>/var/lib/nova``, from gen_tree.py). Timed, medians of ``--runs``
in one run, warm cache (the tree read once first) and cold (page cache
dropped before each run, as root):

* ``osbackup-manage backup create --host H --service nova --full --wait``
  against ``tar -cf - etc/nova var/lib/nova | zstd -1 -T0 > file`` (the
  agent runs with ``compression_level = 1``, ``compression_threads = -1``,
  the same codec settings);
* ``osbackup-manage restore create ID --wait`` against ``zstd -dc file |
  tar -x`` into an empty directory, the restore ratio also shown without
  one settle window (``[agent] unit_check_settle``, which a restore must
  spend proving the started units stay up).

Each osbackup figure is split into where the time went, from the
catalogue's timestamps: CLI start (``osbackup-manage --help``), dispatch
(command start to the task starting on the agent), the agent's work,
report and wait loop (task end to the command's exit); for a restore,
each phase from its steps. The backup's agent work is split further by
stage from the agent's ``Task ... split:`` log line (read, hash,
compress, handoff to the storage thread, write, stream hash, fsync:
seconds summed per stage; stages in different threads overlap). The
units are stand-in daemons driven by the command service manager (five
nova units), as in the functional tests.

    python tools/bench/e2e.py --files 12000 --big 4 --big-mb 200 --runs 3

Nothing here asserts a timing.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)

import gen_tree  # noqa: E402  (tools/bench/gen_tree.py)
from run import drop_page_cache as drop_caches  # noqa: E402

from osbackup.tests.functional import fleet as fleet_mod  # noqa: E402

NOVA_UNITS = ['nova-api', 'nova-scheduler', 'nova-conductor',
              'nova-novncproxy', 'nova-compute']
SETTLE = 3


def warm(path: str) -> None:
    subprocess.run('tar -cf - . | cat > /dev/null', shell=True, cwd=path,
                   check=True)


def timed_shell(command: str, cwd: str) -> float:
    start = time.monotonic()
    subprocess.run(command, shell=True, cwd=cwd, check=True)
    return time.monotonic() - start


_TASK_LINE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \d+ INFO '
                        r'\S+ .*Task (\S+) (accepted|started|ended)'
                        r'(?:: (\S+))?')


_STEP_LINE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \d+ INFO '
                        r'\S+ .*Restore step (\S+) (.+) took ([\d.]+) s')


_SPLIT_LINE = re.compile(r'^\S+ \S+ \d+ INFO \S+ .*Task (\S+) split: (.+)$')


def work_split(log: str, task_id: str) -> dict:
    """{stage: seconds} the agent logged for a backup task (runner.py)."""
    for line in log.splitlines():
        match = _SPLIT_LINE.match(line)
        if match and match.group(1) == task_id:
            return {stage: float(seconds.split()[0]) for stage, seconds in
                    (part.split(' ', 1) for part in
                     match.group(2).split(', '))}
    return {}


def _epoch(stamp: str) -> float:
    at = time.mktime(time.strptime(stamp.split('.')[0], '%Y-%m-%d %H:%M:%S'))
    return at + float('0.' + stamp.split('.')[1])


def step_times(log: str, since: float) -> dict:
    """{"action target": seconds} of the agent's restore steps after since."""
    out = {}
    for line in log.splitlines():
        match = _STEP_LINE.match(line)
        if match and _epoch(match.group(1)) >= since:
            key = '%s %s' % (match.group(2), match.group(3))
            out[key] = out.get(key, 0.0) + float(match.group(4))
    return out


def task_events(log: str, since: float) -> list[dict]:
    """The agent's tasks from its log after ``since``, in order.

    The catalogue's timestamps are whole seconds; the log's have
    milliseconds. Each entry: id, kind, accepted, started, ended (epoch).
    """
    tasks = {}
    for line in log.splitlines():
        match = _TASK_LINE.match(line)
        if not match:
            continue
        stamp, task_id, event, kind = match.groups()
        at = _epoch(stamp)
        if at < since:
            continue
        entry = tasks.setdefault(task_id, {'id': task_id})
        entry[event] = at
        if kind and event == 'started':
            entry['kind'] = kind
    return sorted((t for t in tasks.values() if 'ended' in t),
                  key=lambda t: t['ended'])


class Bench:
    """One fleet, its tree and the timed commands."""

    def __init__(self, args):
        self.args = args
        self.fleet = fleet_mod.Fleet(base_dir=tempfile.mkdtemp(
            prefix='osbackup-e2e-', dir=args.workdir))
        self.root = self.fleet.node_root('controller')
        self.host = self.fleet.host('controller')
        self.ref_dir = os.path.join(self.fleet.dir, 'reference')
        os.makedirs(self.ref_dir)

    def setup(self):
        gen_tree.generate(os.path.join(self.root, 'var/lib/nova'),
                          files=self.args.files, big=self.args.big,
                          big_mb=self.args.big_mb,
                          big_spread_mb=self.args.big_spread_mb)
        os.makedirs(os.path.join(self.root, 'etc/nova'), exist_ok=True)
        with open(os.path.join(self.root, 'etc/nova/nova.conf'), 'w') as f:
            f.write('[DEFAULT]\ndebug = False\n')
        self.fleet.start_conductor()
        sections = self.fleet.standin_sections('controller',
                                               {'nova': NOVA_UNITS})
        sections['storage'] = {'local_path': self.fleet.storage,
                               'compression_level': '1',
                               'compression_threads': '-1'}
        sections['agent'] = {'unit_check_settle': str(SETTLE),
                             'unit_check_timeout': '60'}
        self.fleet.start_agent('controller', sections)
        self.fleet.wait_for_agents([self.host])
        for unit in NOVA_UNITS:
            self.fleet.unit('controller', 'start', unit)

    def cli(self, *argv) -> tuple[dict, float, float]:
        """(json result, wall seconds, epoch at start)."""
        began = time.time()
        start = time.monotonic()
        result = self.fleet.manage_json(*argv, timeout=1800)
        return result[0], time.monotonic() - start, began

    def backup(self) -> dict:
        backup, took, began = self.cli(
            'backup', 'create', '--host', self.host, '--service', 'nova',
            '--full', '--wait')
        assert backup['status'] == 'SUCCEEDED', backup
        (task,) = self.tasks(began)
        return {'id': backup['id'], 'total': took,
                'dispatch': task['accepted'] - began,
                'queued': task['started'] - task['accepted'],
                'agent': task['ended'] - task['started'],
                'report+wait': began + took - task['ended'],
                'split': work_split(self.fleet.log('controller'),
                                    task['id'])}

    def tasks(self, since: float) -> list[dict]:
        return task_events(self.fleet.log('controller'), since)

    def restore(self, backup_id) -> dict:
        restore, took, began = self.cli(
            'restore', 'create', str(backup_id), '--wait')
        assert restore['status'] == 'SUCCEEDED', restore
        out = {'total': took}
        last = began
        for task in self.tasks(began):
            # From the previous phase's end: dispatch and report included.
            out[task['kind']] = task['ended'] - last
            last = task['ended']
        out['report+wait'] = began + took - last
        out['steps'] = step_times(self.fleet.log('controller'), began)
        return out

    def reference_backup(self) -> float:
        out = os.path.join(self.ref_dir, 'nova.tar.zst')
        return timed_shell('tar -cf - etc/nova var/lib/nova | zstd -q -1 '
                           '-T0 -f -o %s' % out, self.root)

    def reference_restore(self) -> float:
        dest = os.path.join(self.ref_dir, 'extract')
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        took = timed_shell('zstd -dc %s | tar -x' % os.path.join(
            self.ref_dir, 'nova.tar.zst'), dest)
        # What it costs to make the extracted tree durable, as a restore
        # must before it swaps the tree into place (one syncfs).
        synced = timed_shell('sync -f .', dest)
        shutil.rmtree(dest)
        return took, synced

    def cli_start(self) -> float:
        start = time.monotonic()
        self.fleet.manage('--help')
        return time.monotonic() - start

    def prune_backup(self, backup_id):
        self.fleet.manage('backup', 'delete', str(backup_id), '--force')
        for name in os.listdir(self.root + '/var/lib'):
            if '.orig-' in name:
                shutil.rmtree(os.path.join(self.root, 'var/lib', name))
        for name in os.listdir(self.root + '/etc'):
            if '.orig-' in name:
                shutil.rmtree(os.path.join(self.root, 'etc', name))


def run(bench, cache: str, runs: int) -> dict:
    rows = {'backup': [], 'restore': [], 'ref_backup': [],
            'ref_restore': [], 'ref_sync': [], 'cli_start': []}
    cold = cache == 'cold'
    if not cold:
        warm(bench.root)
    for _ in range(runs):
        if cold:
            drop_caches()
        rows['ref_backup'].append(bench.reference_backup())
        if cold:
            drop_caches()
        backup = bench.backup()
        rows['backup'].append(backup)
        if cold:
            drop_caches()
        ref, synced = bench.reference_restore()
        rows['ref_restore'].append(ref)
        rows['ref_sync'].append(ref + synced)
        if cold:
            drop_caches()
        rows['restore'].append(bench.restore(backup['id']))
        rows['cli_start'].append(bench.cli_start())
        bench.prune_backup(backup['id'])
        os.unlink(os.path.join(bench.ref_dir, 'nova.tar.zst'))
    return rows


def median_parts(parts: list[dict]) -> dict:
    keys = []
    for part in parts:
        keys += [k for k in part if k not in keys and k != 'id']
    return {k: statistics.median(p.get(k, 0) for p in parts) for k in keys
            if k not in ('steps', 'split')}


def report(cache: str, rows: dict) -> None:
    backup = median_parts(rows['backup'])
    restore = median_parts(rows['restore'])
    ref_b = statistics.median(rows['ref_backup'])
    ref_r = statistics.median(rows['ref_restore'])
    print('\n== %s cache (medians of %d) ==' % (cache, len(rows['backup'])))
    print('%-44s %8s %8s %7s' % ('work', 'osbackup', 'ref', 'ratio'))
    print('%-44s %7.2fs %7.2fs %6.2fx' % (
        'full backup vs tar | zstd -1 -T0', backup['total'], ref_b,
        backup['total'] / ref_b))
    print('%-44s %7.2fs %7.2fs %6.2fx' % (
        'restore vs zstd -dc | tar -x', restore['total'], ref_r,
        restore['total'] / ref_r))
    print('%-44s %7.2fs %7.2fs %6.2fx' % (
        'restore less one settle window (%d s)' % SETTLE,
        restore['total'] - SETTLE, ref_r, (restore['total'] - SETTLE) / ref_r))
    ref_s = statistics.median(rows['ref_sync'])
    print('%-44s %7.2fs %7.2fs %6.2fx' % (
        'restore less settle vs zstd -dc | tar -x; sync',
        restore['total'] - SETTLE, ref_s, (restore['total'] - SETTLE) / ref_s))
    print('%-44s %7.2fs' % ('CLI start (osbackup-manage --help)',
                            statistics.median(rows['cli_start'])))
    print('backup split: ' + ', '.join('%s %.2fs' % kv
                                       for kv in backup.items()
                                       if kv[0] != 'total'))
    split = median_parts([b['split'] for b in rows['backup']])
    print('backup agent work by stage (seconds summed per stage across '
          'threads; they overlap): ' +
          ', '.join('%s %.2fs' % kv for kv in split.items()))
    print('restore split: ' + ', '.join('%s %.2fs' % kv
                                        for kv in restore.items()
                                        if kv[0] != 'total'))
    steps = median_parts([r['steps'] for r in rows['restore']])
    print('restore steps (agent): ' + ', '.join(
        '%s %.2fs' % kv for kv in sorted(steps.items(), key=lambda kv: -kv[1])
        if kv[1] >= 0.01))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--files', type=int, default=12000)
    parser.add_argument('--big', type=int, default=4)
    parser.add_argument('--big-mb', type=int, default=200)
    parser.add_argument('--big-spread-mb', type=int, default=50)
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--cache', choices=['warm', 'cold', 'both'],
                        default='both')
    parser.add_argument('--workdir', default='/var/tmp')
    parser.add_argument('--keep', action='store_true',
                        help='keep the fleet directory and its logs')
    args = parser.parse_args(argv)
    if args.keep:
        os.environ['OSBACKUP_TEST_KEEP'] = '1'
    bench = Bench(args)
    try:
        bench.setup()
        caches = ['warm', 'cold'] if args.cache == 'both' else [args.cache]
        for cache in caches:
            if cache == 'cold' and not drop_caches():
                print('cold cache skipped: cannot drop the page cache '
                      '(needs root)')
                continue
            report(cache, run(bench, cache, args.runs))
    finally:
        bench.fleet.cleanup()
        if args.keep:
            print('kept %s' % bench.fleet.dir)
        else:
            shutil.rmtree(bench.fleet.dir, ignore_errors=True)


if __name__ == '__main__':
    main()

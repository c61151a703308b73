#!/usr/bin/env python3
"""osbackup benchmarks: osbackup's own code beside the reference commands.

Every sub-benchmark runs osbackup and its reference in the same run on the
same data, takes the median of ``--runs`` runs, and adds rows to one plain
text table (work, reference, reference figure, osbackup figure, ratio,
notes). Nothing here asserts a timing; see tools/bench/README.rst.

Sub-benchmarks (none selected: all of them, at the quick sizes)::

    --files    file-set backup and restore vs tar | zstd / gzip
    --db       mysql driver backup and load vs mysqldump | zstd / gzip
    --physical mariabackup driver backup and restore vs mariadb-backup
    --fanout   conductor + N simulated agents vs a raw oslo.messaging round
    --idle     an idle osbackup-agent vs an idle bare RPC server process

``--full`` selects the sizes of issue 7 (20,000 files + 5 x 200-275 MB,
2.5 GB of database rows, 50/200/1000 agents).
"""

import argparse
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import psutil
import pymysql

import gen_db
import gen_tree

from osbackup.tests.functional import mariadb_server

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = sys.executable
WORKER = os.path.join(HERE, 'osb_worker.py')
FAKE_AGENTS = os.path.join(HERE, 'fake_agents.py')
RABBIT_URL = os.environ.get('OSBACKUP_BENCH_TRANSPORT_URL',
                            'rabbit://guest:guest@127.0.0.1:5672/')
RABBIT_USER = os.environ.get('OSBACKUP_BENCH_RABBIT_USER', 'guest')
DB_URL = os.environ.get('OSBACKUP_BENCH_DB_URL',
                        'mysql+pymysql://root@127.0.0.1:3306/')
MB = 1 << 20
# What the file-set drivers archive, for every service of the tree.
TREE_PATHS = ['/%s/%s' % (base, svc) for svc in gen_tree.SERVICES
              for base in ('etc', 'var/lib', 'var/log')]
LOST_AFTER = 30
FULL = {'tree_files': 20000, 'tree_big': 5, 'tree_big_mb': 200,
        'tree_big_spread_mb': 75, 'db_mb': 2500, 'agents': '50,200,1000'}


# -- helpers ---------------------------------------------------------------

class Report:
    """Rows of the table plus the raw figures for --json."""

    COLUMNS = ('work', 'reference', 'reference figure', 'osbackup figure',
               'ratio', 'notes')

    def __init__(self, drop=True):
        self.rows = []
        self.raw = {}
        self.drop = drop
        self.cache = 'cold cache (page cache dropped before each timed run)'

    def add(self, work, reference, ref_fig, osb_fig, ratio=None, notes=''):
        notes = ' '.join(str(notes).split())        # one line per row
        self.rows.append({'work': work, 'reference': reference,
                          'reference figure': ref_fig,
                          'osbackup figure': osb_fig,
                          'ratio': ratio, 'notes': notes})
        print('  %s: %s -> %s%s' % (work, ref_fig, osb_fig,
                                    ' (%.2fx)' % ratio if ratio else ''),
              flush=True)

    def table(self):
        cells = [self.COLUMNS] + [
            tuple('%.2fx' % r[c] if c == 'ratio' and r[c] is not None
                  else '-' if r[c] is None else str(r[c])
                  for c in self.COLUMNS) for r in self.rows]
        widths = [max(len(row[i]) for row in cells)
                  for i in range(len(self.COLUMNS))]
        lines = []
        for n, row in enumerate(cells):
            lines.append(' | '.join(cell.ljust(w) for cell, w in
                                    zip(row, widths)).rstrip())
            if n == 0:
                lines.append('-+-'.join('-' * w for w in widths))
        return '\n'.join(lines)


def ratio(osb, ref):
    return osb / ref if ref and osb is not None else None


def fmt(spec, value):
    """``spec % value``, or n/a when there is no value (no clean run)."""
    return 'n/a' if value is None else spec % value


def median(values):
    return statistics.median(values) if values else None


def drop_page_cache() -> bool:
    """Write back and drop the page cache; False where that is refused."""
    try:
        os.sync()
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('3\n')
        return True
    except OSError:
        return False


def drop_caches(report):
    """Drop the page cache before a timed run; note when it cannot."""
    if not report.drop:
        return False
    if drop_page_cache():
        return True
    report.cache = 'warm cache'
    return False


def timed_shell(command, env=None):
    """Run a bash pipeline; return (seconds, peak RSS KiB of its processes).

    wait4 gives the largest RSS among bash and the children it waited for
    (the pipeline's members), not their sum.
    """
    started = time.monotonic()
    proc = subprocess.Popen(['bash', '-o', 'pipefail', '-c', command],
                            env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError('%r exited %d' % (command, proc.returncode))
    return seconds, usage.ru_maxrss


def run_worker(operation, params):
    proc = subprocess.run([PYTHON, WORKER, operation, json.dumps(params)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError('osb_worker %s failed (%d): %s'
                           % (operation, proc.returncode, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fsync_seconds(path):
    started = time.monotonic()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.monotonic() - started


def count_files(top):
    return sum(len(files) for _d, _s, files in os.walk(top))


def mb(nbytes):
    return nbytes / MB


def proc_status(pid, field):
    """VmRSS / VmHWM (KiB) or Threads of a process, from /proc."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return None


def stop_processes(procs, timeout=30):
    """SIGTERM all, wait up to ``timeout`` s in all, then SIGKILL."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rabbitmqctl(*argv, check=True):
    return subprocess.run(['rabbitmqctl', '-q'] + list(argv), check=check,
                          capture_output=True, text=True, timeout=120)


def last_error(path):
    """The last line of a process's stderr file that says something."""
    try:
        with open(path, errors='replace') as f:
            lines = [line.strip() for line in f if line.strip() and
                     'Eventlet' not in line and 'eventlet' not in line]
    except OSError:
        return ''
    return lines[-1] if lines else ''


def wait_queue(vhost, queue, proc, what, stderr, timeout=60):
    """Wait until ``queue`` exists in ``vhost`` (its server consumes)."""
    deadline = time.monotonic() + timeout
    while queue not in rabbitmqctl('list_queues', '-p', vhost,
                                   'name').stdout.split():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError('%s did not start: %s'
                               % (what, last_error(stderr)))
        time.sleep(0.3)


class Vhost:
    """A RabbitMQ vhost of our own; deleting it deletes its queues."""

    def __init__(self, tag):
        self.name = 'osbackup_bench_%s_%s' % (tag, uuid.uuid4().hex[:8])
        rabbitmqctl('add_vhost', self.name)
        rabbitmqctl('set_permissions', '-p', self.name, RABBIT_USER,
                    '.*', '.*', '.*')
        self.url = RABBIT_URL.rstrip('/') + '/' + self.name

    def delete(self):
        rabbitmqctl('delete_vhost', self.name, check=False)


def rabbit_sockets():
    """(sockets limit, sockets used) of the broker, or (None, None)."""
    try:
        out = rabbitmqctl('status', '--formatter', 'json').stdout
        fds = json.loads(out)['file_descriptors']
        return fds['sockets_limit'], fds['sockets_used']
    except (subprocess.SubprocessError, ValueError, KeyError):
        return None, None


def broker_process():
    for proc in psutil.process_iter(['name']):
        if proc.info['name'] == 'beam.smp':
            return proc
    return None


def cpu_seconds(proc):
    if proc is None:
        return 0.0
    times = proc.cpu_times()
    return times.user + times.system


def db_connections():
    """MariaDB's count of connections ever opened (server-wide)."""
    conn = gen_db.connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'Connections'")
            return int(cur.fetchone()[1])
    finally:
        conn.close()


def write_key(base):
    """An RPC signing key, as "openssl rand -hex 32" makes it.

    Written into every config as ``[DEFAULT] rpc_signing_key_file``: code
    that signs its messages needs it, and older code ignores the option.
    """
    path = os.path.join(base, 'rpc.key')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(secrets.token_hex(32) + '\n')
    return path


def write_conf(path, sections):
    with open(path, 'w') as f:
        for section, values in sections.items():
            f.write('[%s]\n' % section)
            for key, value in values.items():
                f.write('%s = %s\n' % (key, value))
            f.write('\n')
    return path


# -- files -------------------------------------------------------------------

def _cpu_shell(command):
    """timed_shell plus the CPU seconds of the pipeline's processes."""
    started = time.monotonic()
    proc = subprocess.Popen(['bash', '-o', 'pipefail', '-c', command])
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError('%r exited %d'
                           % (command, os.waitstatus_to_exitcode(status)))
    return seconds, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def bench_files(args, work, report):
    tree = args.tree_dir or os.path.join(work, 'tree')
    print('files: generating the tree in %s' % tree, flush=True)
    info = gen_tree.generate(tree, args.tree_files, args.tree_big,
                             args.tree_big_mb, args.tree_big_spread_mb)
    paths = [p for p in TREE_PATHS
             if os.path.exists(os.path.join(tree, p.lstrip('/')))]
    rel = ' '.join(shlex.quote(p.lstrip('/')) for p in paths)
    out = os.path.join(work, 'files-out')
    os.makedirs(out, exist_ok=True)
    tar = 'tar -cf - -C %s %s' % (shlex.quote(tree), rel)
    refs = {'zstd': (tar + ' | zstd -q -1 -T0 > %s',
                     os.path.join(out, 'ref.tar.zst')),
            'gzip': (tar + ' | gzip -6 > %s',
                     os.path.join(out, 'ref.tar.gz'))}
    osb_modes = {'comparable': (1, -1), 'default': (3, 0)}
    fig = {k: {'s': [], 'size': [], 'rss': []}
           for k in list(refs) + list(osb_modes)}
    ref_fsync = []
    last = {}
    for run in range(args.runs):
        print('files: backup run %d/%d' % (run + 1, args.runs), flush=True)
        for name, (command, target) in refs.items():
            if os.path.exists(target):
                os.unlink(target)
            drop_caches(report)
            seconds, rss = timed_shell(command % shlex.quote(target))
            fig[name]['s'].append(seconds)
            fig[name]['size'].append(os.path.getsize(target))
            fig[name]['rss'].append(rss)
            if name == 'zstd':
                ref_fsync.append(fsync_seconds(target))
        for name, (level, threads) in osb_modes.items():
            storage = os.path.join(out, 'osb-%s' % name)
            shutil.rmtree(storage, ignore_errors=True)
            drop_caches(report)
            res = run_worker('files-backup', {
                'storage': storage, 'root': tree, 'paths': paths,
                'level': level, 'threads': threads})
            fig[name]['s'].append(res['seconds'])
            fig[name]['size'].append(res['size'])
            fig[name]['rss'].append(res['maxrss_kb'])
            fig[name]['base'] = res['rss_base_kb']
            last[name] = res
    # Restores: each tool reads back its own level-1 archive.
    restore = {'ref': {'s': [], 'rss': [], 'cpu': []},
               'osb': {'s': [], 'rss': [], 'cpu': []},
               'deep': {'s': [], 'rss': [], 'cpu': []}}
    dest = os.path.join(out, 'ref-restore')
    staging = os.path.join(out, 'osb-restore')
    for run in range(args.runs):
        print('files: restore run %d/%d' % (run + 1, args.runs), flush=True)
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        drop_caches(report)
        seconds, rss, cpu = _cpu_shell('zstd -dc %s | tar -xf - -C %s' % (
            shlex.quote(refs['zstd'][1]), shlex.quote(dest)))
        restore['ref']['s'].append(seconds)
        restore['ref']['rss'].append(rss)
        restore['ref']['cpu'].append(cpu)
        # 'osb' as a restore (the artifact's sha256 proves every byte),
        # 'deep' as backup verify --deep (every file hashed as well).
        for name in ('osb', 'deep'):
            shutil.rmtree(staging, ignore_errors=True)
            drop_caches(report)
            res = run_worker('files-restore', {
                'storage': os.path.join(out, 'osb-comparable'),
                'location': last['comparable']['location'],
                'sha256': last['comparable']['sha256'], 'staging': staging,
                'paths': paths, 'hash_files': name == 'deep'})
            restore[name]['s'].append(res['seconds'])
            restore[name]['rss'].append(res['maxrss_kb'])
            restore[name]['cpu'].append(res['cpu_seconds'])
            restore[name]['base'] = res['rss_base_kb']
    ref_files, osb_files = count_files(dest), count_files(staging)
    expected = info['files']
    for name in ('ref-restore', 'osb-restore', 'osb-comparable',
                 'osb-default'):
        shutil.rmtree(os.path.join(out, name), ignore_errors=True)

    med = {k: {m: median(v[m]) for m in ('s', 'size', 'rss')}
           for k, v in fig.items()}
    rmed = {k: {m: median(v[m]) for m in ('s', 'rss', 'cpu')}
            for k, v in restore.items()}
    what = '%d files + %d x %d%s MB = %.0f MB' % (
        args.tree_files, args.tree_big, args.tree_big_mb,
        '-%d' % (args.tree_big_mb + args.tree_big_spread_mb)
        if args.tree_big_spread_mb else '', mb(info['bytes']))
    report.raw['files'] = {'tree': info, 'backup': fig, 'restore': restore,
                           'ref_fsync_s': ref_fsync,
                           'restored_files': {'ref': ref_files,
                                              'osb': osb_files,
                                              'expected': expected}}
    z, g = med['zstd'], med['gzip']
    c, d = med['comparable'], med['default']
    report.add('file-set backup, %s' % what, 'tar -cf - | zstd -1 -T0',
               '%.2f s' % z['s'],
               '%.2f s (level 1, threads -1)' % c['s'], ratio(c['s'], z['s']),
               'write_archive -> HashingWriter -> LocalStorage, fsync '
               'included; the reference does not fsync (+%.2f s)'
               % median(ref_fsync))
    report.add('file-set backup, defaults', 'tar -cf - | zstd -1 -T0',
               '%.2f s' % z['s'],
               '%.2f s (level 3, threads 0)' % d['s'], ratio(d['s'], z['s']),
               '[storage] compression_level/threads defaults')
    report.add('file-set backup vs the guide', 'tar -cf - | gzip -6',
               '%.2f s' % g['s'], '%.2f s (level 1, threads -1)' % c['s'],
               ratio(c['s'], g['s']), 'Operations Guide recipe')
    report.add('file-set archive size', 'tar | zstd -1 -T0',
               '%.1f MB' % mb(z['size']), '%.1f MB (level 1)' % mb(c['size']),
               ratio(c['size'], z['size']),
               'level 3: %.1f MB; gzip -6: %.1f MB; tree %.1f MB' % (
                   mb(d['size']), mb(g['size']), mb(info['bytes'])))
    report.add('file-set backup peak RSS', 'tar | zstd -1 -T0 (largest '
               'process)', '%.1f MB' % (z['rss'] / 1024),
               '%.1f MB (level 1, threads -1)' % (c['rss'] / 1024),
               ratio(c['rss'], z['rss']),
               'osbackup process after imports %.1f MB; level 3 threads 0 '
               'peak %.1f MB' % (fig['comparable']['base'] / 1024,
                                 d['rss'] / 1024))
    report.add('file-set restore', 'zstd -dc | tar -xf -',
               '%.2f s' % rmed['ref']['s'], '%.2f s' % rmed['osb']['s'],
               ratio(rmed['osb']['s'], rmed['ref']['s']),
               'extract_archive to staging + sha256 of the artifact, as '
               'a restore; CPU %.2f s vs %.2f s (%.2fx); every file hashed '
               'too (verify --deep): %.2f s (%.2fx); peak RSS %.1f MB vs '
               '%.1f MB (osbackup after imports %.1f MB); files restored '
               '%d/%d/%d (osbackup/ref/tree)' % (
                   rmed['osb']['cpu'], rmed['ref']['cpu'],
                   ratio(rmed['osb']['cpu'], rmed['ref']['cpu']) or 0,
                   rmed['deep']['s'],
                   ratio(rmed['deep']['s'], rmed['ref']['s']) or 0,
                   rmed['osb']['rss'] / 1024, rmed['ref']['rss'] / 1024,
                   restore['osb']['base'] / 1024,
                   osb_files, ref_files, expected))
    bench_incremental(args, tree, paths, out, report, z['s'])


def _touch_share(tree, paths, share, offset):
    """Rewrite every ``share``-th file in place: same bytes, new mtime.

    The content stays that of the generator (so a kept --tree-dir stays
    valid); a backup cannot know that without reading the file again.
    """
    files = sorted(os.path.join(d, f) for p in paths
                   for d, _, names in os.walk(os.path.join(
                       tree, p.lstrip('/'))) for f in names)
    picked = files[offset % share::share]
    changed = 0
    for path in picked:
        with open(path, 'r+b') as f:
            head = f.read(1)
            f.seek(0)
            f.write(head)
        changed += os.path.getsize(path)
    return len(picked), changed


def bench_incremental(args, tree, paths, out, report, ref_s):
    """Incremental backups of the same tree: unchanged, then 1% changed."""
    storage = os.path.join(out, 'osb-incr')
    shutil.rmtree(storage, ignore_errors=True)
    params = {'storage': storage, 'root': tree, 'paths': paths,
              'level': 1, 'threads': -1}
    print('files: incremental chain', flush=True)
    prev = run_worker('files-backup', dict(params, backup_id='1'))
    fig = {'cold': [], 'warm': [], 'changed': []}
    stored = {}
    seq = 1
    for run in range(args.runs):
        for kind in ('cold', 'warm', 'changed'):
            seq += 1
            if kind == 'changed':
                stored['touched'] = _touch_share(tree, paths, 100, run)
            if kind != 'warm':
                drop_caches(report)
            res = run_worker('files-backup', dict(
                params, backup_id=str(seq), base={
                    'backup_id': str(seq - 1), 'sha256': prev['sha256'],
                    'depth': 0}))
            if res['level'] != 'incremental':
                raise RuntimeError('expected an incremental backup, got %s'
                                   % res['level'])
            fig[kind].append(res['seconds'])
            stored[kind] = res
            prev = res
    shutil.rmtree(storage, ignore_errors=True)
    report.raw['incremental'] = {k: v for k, v in fig.items()}
    med = {k: median(v) for k, v in fig.items()}
    cold, changed = stored['cold'], stored['changed']
    report.add('incremental backup, unchanged tree',
               'tar -cf - | zstd -1 -T0 (full)', '%.2f s' % ref_s,
               '%.2f s' % med['cold'], ratio(med['cold'], ref_s),
               'cache dropped; warm cache %.2f s (%.2fx); stored %d files, '
               'artifact %.2f MB' % (med['warm'], ratio(med['warm'], ref_s),
                                     cold['stored_files'],
                                     mb(cold['size'])))
    report.add('incremental backup, 1% of files changed',
               'tar -cf - | zstd -1 -T0 (full)', '%.2f s' % ref_s,
               '%.2f s' % med['changed'], ratio(med['changed'], ref_s),
               'cache dropped; %d of %d files rewritten (%.1f MB), stored '
               '%d files, artifact %.2f MB' % (
                   stored['touched'][0], changed['files'],
                   mb(stored['touched'][1]), changed['stored_files'],
                   mb(changed['size'])))


# -- db ----------------------------------------------------------------------

class StallProbe:
    """Insert into a bench table in a loop; record the slowest insert."""

    INTERVAL = 0.01

    def __init__(self, database):
        self.database = database
        self.max_ms = 0.0
        self.count = 0
        self._stop = threading.Event()
        self._thread = None
        self.error = None

    def _run(self):
        try:
            conn = gen_db.connect(self.database, autocommit=True)
        except pymysql.MySQLError as exc:
            self.error = str(exc)
            return
        try:
            with conn.cursor() as cur:
                while not self._stop.is_set():
                    started = time.perf_counter()
                    cur.execute(
                        'INSERT INTO instances (uuid, hostname, vm_state, '
                        'created_at, deleted) VALUES (%s, %s, %s, NOW(), 0)',
                        (str(uuid.uuid4()), 'probe', 'building'))
                    took = (time.perf_counter() - started) * 1000
                    self.max_ms = max(self.max_ms, took)
                    self.count += 1
                    self._stop.wait(self.INTERVAL)
        except pymysql.MySQLError as exc:
            self.error = str(exc)
        finally:
            conn.close()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


def settle_innodb(timeout=90, still=3):
    """Wait while InnoDB writes back the last load's dirty pages.

    Else a timed load pays for the flushing of the one before it. Stops
    when they are written, or when their count has not dropped for
    ``still`` seconds (InnoDB does not flush more when idle). Returns the
    seconds waited.
    """
    started = time.monotonic()
    conn = gen_db.connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            lowest, since = None, started
            while time.monotonic() - started < timeout:
                cur.execute("SHOW GLOBAL STATUS LIKE "
                            "'Innodb_buffer_pool_pages_dirty'")
                dirty = int(cur.fetchone()[1])
                if dirty < 64:
                    break
                if lowest is None or dirty < lowest:
                    lowest, since = dirty, time.monotonic()
                elif time.monotonic() - since > still:
                    break
                time.sleep(0.5)
    finally:
        conn.close()
    return time.monotonic() - started


def _mysql_args():
    out = '-u %s -S %s' % (shlex.quote(gen_db.USER),
                           shlex.quote(gen_db.SOCKET))
    env = dict(os.environ)
    if gen_db.PASSWORD:
        env['MYSQL_PWD'] = gen_db.PASSWORD
    return out, env


def bench_db(args, work, report):
    out = os.path.join(work, 'db-out')
    os.makedirs(out, exist_ok=True)
    # Two benches at once on one server must not drop each other's rows.
    prefix = os.environ.get('OSBACKUP_BENCH_DB_PREFIX', gen_db.PREFIX)
    try:
        print('db: generating %d MB of rows' % args.db_mb, flush=True)
        info = gen_db.generate(args.db_mb, prefix=prefix)
        _bench_db(args, out, report, info)
    finally:
        if not args.keep:
            gen_db.drop(prefix)


def _bench_db(args, out, report, info):
    dbs = info['databases']
    probe_db = dbs[0]
    client, env = _mysql_args()
    names = ' '.join(dbs)
    refs = {
        'single': ('mysqldump %s --single-transaction --quick --routines '
                   '--events --triggers --hex-blob --databases %s | '
                   'zstd -q -1 -T0 > %%s' % (client, names),
                   os.path.join(out, 'ref.sql.zst')),
        'opt': ('mysqldump %s --opt --databases %s | gzip > %%s'
                % (client, names), os.path.join(out, 'ref-opt.sql.gz')),
    }
    osb_modes = {'comparable': (1, -1), 'default': (3, 0)}
    fig = {k: {'s': [], 'size': [], 'stall': [], 'rss': []}
           for k in list(refs) + list(osb_modes)}
    base = {'mysql_user': gen_db.USER, 'mysql_password': gen_db.PASSWORD,
            'mysql_socket': gen_db.SOCKET, 'databases': dbs}
    last = {}
    for run in range(args.runs):
        print('db: backup run %d/%d' % (run + 1, args.runs), flush=True)
        for name, (command, target) in refs.items():
            if os.path.exists(target):
                os.unlink(target)
            drop_caches(report)
            with StallProbe(probe_db) as probe:
                seconds, rss = timed_shell(command % shlex.quote(target),
                                           env=env)
            fig[name]['s'].append(seconds)
            fig[name]['size'].append(os.path.getsize(target))
            fig[name]['stall'].append(probe.max_ms)
            fig[name]['rss'].append(rss)
        for name, (level, threads) in osb_modes.items():
            storage = os.path.join(out, 'osb-%s' % name)
            shutil.rmtree(storage, ignore_errors=True)
            drop_caches(report)
            with StallProbe(probe_db) as probe:
                res = run_worker('db-backup', dict(
                    base, storage=storage, level=level, threads=threads))
            fig[name]['s'].append(res['seconds'])
            fig[name]['size'].append(res['size'])
            fig[name]['stall'].append(probe.max_ms)
            fig[name]['rss'].append(res['maxrss_kb'])
            last[name] = res
    restore = {'ref': [], 'osb': [], 'serial': []}
    workers = None
    for run in range(args.runs):
        print('db: restore run %d/%d' % (run + 1, args.runs), flush=True)
        settle_innodb()
        drop_caches(report)
        seconds, _rss = timed_shell('zstd -dc %s | mysql %s' % (
            shlex.quote(refs['single'][1]), client), env=env)
        restore['ref'].append(seconds)
        # The default (parallel) load, and one client per database.
        for name, parallelism in (('osb', None), ('serial', 1)):
            settle_innodb()
            drop_caches(report)
            res = run_worker('db-restore', dict(
                base, storage=os.path.join(out, 'osb-comparable'),
                artifacts=last['comparable']['artifacts'],
                parallelism=parallelism))
            restore[name].append(res['seconds'])
            workers = res['parallelism'] if name == 'osb' else workers

    med = {k: {m: median(v[m]) for m in ('s', 'size', 'stall', 'rss')}
           for k, v in fig.items()}
    report.raw['db'] = {'data': info, 'backup': fig, 'restore': restore}
    s, o = med['single'], med['opt']
    c, d = med['comparable'], med['default']
    what = '%d DBs, %d tables, %d rows, %.0f MB of row data' % (
        len(dbs), info['tables'], info['rows'], mb(info['bytes']))
    report.add('logical DB backup, %s' % what,
               'mysqldump --single-transaction --quick ... | zstd -1 -T0',
               '%.2f s (%.1f MB)' % (s['s'], mb(s['size'])),
               '%.2f s (%.1f MB, level 1, threads -1)' % (
                   c['s'], mb(c['size'])),
               ratio(c['s'], s['s']),
               'MySQLDriver.backup: one dump split into %d .sql.zst; '
               'peak RSS %.1f MB' % (len(dbs), c['rss'] / 1024))
    report.add('logical DB backup, defaults',
               'mysqldump --single-transaction ... | zstd -1 -T0',
               '%.2f s' % s['s'], '%.2f s (level 3, threads 0)' % d['s'],
               ratio(d['s'], s['s']), '%.1f MB' % mb(d['size']))
    report.add('logical DB backup vs the guide',
               'mysqldump --opt --databases ... | gzip',
               '%.2f s' % o['s'], '%.2f s (level 1, threads -1)' % c['s'],
               ratio(c['s'], o['s']),
               'Operations Guide recipe (restricted to the bench DBs)')
    report.add('max write stall during DB backup',
               'mysqldump --single-transaction ... | zstd -1 -T0',
               '%.0f ms' % s['stall'], '%.0f ms (level 1); %.0f ms (level '
               '3)' % (c['stall'], d['stall']), ratio(c['stall'],
                                                      s['stall']),
               'slowest INSERT into %s.instances every %d ms; --opt | gzip: '
               '%.0f ms (it locks tables)' % (probe_db,
                                              StallProbe.INTERVAL * 1000,
                                              o['stall']))
    rst = {k: median(v) for k, v in restore.items()}
    report.add('logical DB restore', 'zstd -dc | mysql',
               '%.2f s' % rst['ref'],
               '%.2f s (%d clients per database)' % (rst['osb'], workers),
               ratio(rst['osb'], rst['ref']),
               'MySQLDriver.verify of the %d artifacts, then .load of each '
               'in turn, tables in parallel; restore_parallelism=1: %.2f s '
               '(%.2fx)' % (len(dbs), rst['serial'],
                            ratio(rst['serial'], rst['ref'])))


# -- physical DB -------------------------------------------------------------


def bench_physical(args, work, report):
    """mariabackup driver vs the raw mariadb-backup pipeline.

    A physical backup copies a whole server, so this runs its own: a
    private mariadbd in the work directory, filled by gen_db.py. Nothing
    else on the machine lands in the copy, and the system server is never
    touched. Restores go into empty directories under the work directory.
    """
    out = os.path.join(work, 'physical')
    os.makedirs(out, exist_ok=True)
    server = None
    try:
        server = mariadb_server.PrivateServer(
            os.path.join(out, 'server'), extra_args=[
                '--innodb-buffer-pool-size=256M',
                '--innodb-log-file-size=96M'])
        server.start()
        print('physical: generating %d MB of rows in a private server'
              % args.db_mb, flush=True)
        system_socket, gen_db.SOCKET = gen_db.SOCKET, server.socket
        try:
            info = gen_db.generate(args.db_mb)
        finally:
            gen_db.SOCKET = system_socket
        _bench_physical(args, out, report, info, server.socket)
    finally:
        if server is not None:
            server.stop()


def _bench_physical(args, out, report, info, socket):
    client = '-u root -S %s' % shlex.quote(socket)
    raw_file = os.path.join(out, 'raw.xbstream.zst')
    scratch = os.path.join(out, 'raw-target')
    raw_backup = ('mariadb-backup --no-defaults --backup '
                  '--stream=xbstream %s --target-dir=%s 2>%s | '
                  'zstd -q -1 -T0 > %s' % (
                      client, shlex.quote(scratch),
                      shlex.quote(os.path.join(out, 'raw-backup.log')),
                      shlex.quote(raw_file)))
    base = {'mysql_user': 'root', 'mysql_password': '',
            'mysql_socket': socket}
    modes = {'comparable': (1, -1), 'default': (3, 0)}
    fig = {k: {'s': [], 'size': [], 'rss': []}
           for k in ['raw'] + list(modes)}
    last = {}
    for run in range(args.runs):
        print('physical: backup run %d/%d' % (run + 1, args.runs),
              flush=True)
        shutil.rmtree(scratch, ignore_errors=True)
        if os.path.exists(raw_file):
            os.unlink(raw_file)
        drop_caches(report)
        seconds, rss = timed_shell(raw_backup)
        fig['raw']['s'].append(seconds)
        fig['raw']['size'].append(os.path.getsize(raw_file))
        fig['raw']['rss'].append(rss)
        for name, (level, threads) in modes.items():
            storage = os.path.join(out, 'osb-%s' % name)
            shutil.rmtree(storage, ignore_errors=True)
            drop_caches(report)
            res = run_worker('physical-backup', dict(
                base, storage=storage, level=level, threads=threads))
            fig[name]['s'].append(res['seconds'])
            fig[name]['size'].append(res['size'])
            fig[name]['rss'].append(res['maxrss_kb'])
            last[name] = res

    # Restores: into empty private directories; the reference is the
    # issue's (prepare + --copy-back) and the stricter --move-back.
    targets = os.path.join(out, 'restore')
    staging = os.path.join(targets, 'raw-staging')
    datadir = os.path.join(targets, 'data')
    log = shlex.quote(os.path.join(out, 'raw-restore.log'))
    raw_restore = (
        'mkdir -p {st} {dd} && zstd -dc {f} | mbstream -x -C {st} && '
        'mariadb-backup --prepare --target-dir={st} 2>>{log} && '
        'mariadb-backup --{how}-back --target-dir={st} --datadir={dd} '
        '2>>{log}')
    restore = {'copy': [], 'move': [], 'osb': []}
    for run in range(args.runs):
        print('physical: restore run %d/%d' % (run + 1, args.runs),
              flush=True)
        for how in ('copy', 'move'):
            shutil.rmtree(targets, ignore_errors=True)
            drop_caches(report)
            seconds, _rss = timed_shell(raw_restore.format(
                st=shlex.quote(staging), dd=shlex.quote(datadir),
                f=shlex.quote(raw_file), log=log, how=how))
            restore[how].append(seconds)
        shutil.rmtree(targets, ignore_errors=True)
        os.makedirs(targets)
        drop_caches(report)
        res = run_worker('physical-restore', dict(
            base, storage=os.path.join(out, 'osb-comparable'),
            artifact=last['comparable']['artifact'], datadir=datadir))
        restore['osb'].append(res['seconds'])
    shutil.rmtree(targets, ignore_errors=True)

    med = {k: {m: median(v[m]) for m in ('s', 'size', 'rss')}
           for k, v in fig.items()}
    rst = {k: median(v) for k, v in restore.items()}
    report.raw['physical'] = {'data': info, 'backup': fig,
                              'restore': restore}
    r, c, d = med['raw'], med['comparable'], med['default']
    uncompressed = last['comparable']['artifact']['meta'][
        'uncompressed_size']
    report.add('physical DB backup, whole server (%.0f MB copied, incl. '
               '%.0f MB of bench rows)' % (mb(uncompressed),
                                           mb(info['bytes'])),
               'mariadb-backup --backup --stream=xbstream | zstd -1 -T0',
               '%.2f s (%.1f MB)' % (r['s'], mb(r['size'])),
               '%.2f s (%.1f MB, level 1, threads -1)' % (
                   c['s'], mb(c['size'])),
               ratio(c['s'], r['s']),
               'MariaBackupDriver.backup: one .xbstream.zst artifact; '
               'peak RSS %.1f MB' % (c['rss'] / 1024))
    report.add('physical DB backup, defaults',
               'mariadb-backup ... | zstd -1 -T0', '%.2f s' % r['s'],
               '%.2f s (level 3, threads 0)' % d['s'], ratio(d['s'], r['s']),
               '%.1f MB' % mb(d['size']))
    report.add('physical DB restore into an empty datadir',
               'zstd -dc | mbstream -x; --prepare; --copy-back',
               '%.2f s' % rst['copy'], '%.2f s' % rst['osb'],
               ratio(rst['osb'], rst['copy']),
               'MariaBackupDriver.restore: sha256 and path checks while '
               'unpacking, --prepare, --move-back, swap')
    report.add('physical DB restore vs --move-back',
               'zstd -dc | mbstream -x; --prepare; --move-back',
               '%.2f s' % rst['move'], '%.2f s' % rst['osb'],
               ratio(rst['osb'], rst['move']), 'same run')


# -- fanout ------------------------------------------------------------------

class Pongs:
    """Raw listener endpoint of the baseline round."""

    def __init__(self):
        self.lock = threading.Lock()
        self.expect = None
        self.seen = 0
        self.done = threading.Event()

    def arm(self, seq, count):
        with self.lock:
            self.expect, self.seen = (seq, count), 0
            self.done.clear()

    def pong(self, context, host, seq, payload):
        with self.lock:
            if self.expect and seq == self.expect[0]:
                self.seen += 1
                if self.seen == self.expect[1]:
                    self.done.set()


_CONF = None


def _bench_conf():
    """The bench process's own config (oslo.messaging needs the global)."""
    global _CONF
    if _CONF is None:
        import osbackup.conf
        from osbackup import rpc
        conf = osbackup.conf.CONF
        rpc.set_defaults(conf)
        conf([], project='osbackup', default_config_files=[])
        conf.set_override('rpc_timeout', 900, group='conductor')
        _CONF = conf
    return _CONF


def bench_fanout(args, work, report):
    for n in [int(x) for x in str(args.agents).split(',') if x]:
        limit, used = rabbit_sockets()
        need = 2 * n + 20
        if limit is not None and need > limit - (used or 0):
            report.add('fan-out to %d agents' % n, 'raw oslo.messaging round',
                       'not run', 'not run', None,
                       'RabbitMQ allows %d sockets (%d used), %d agents need '
                       '~%d: restart it with a higher ulimit -n (see '
                       'shared/MESSAGING.md)' % (limit, used or 0, n, need))
            continue
        _fanout(args, work, report, n)


def _fanout(args, work, report, n):
    import fake_agents
    from osbackup.conductor import rpcapi as conductor_rpcapi
    from osbackup.db import api as db_api
    from osbackup.db import models
    from osbackup import rpc
    from osbackup import states
    import sqlalchemy as sa

    conf = _bench_conf()
    tag = uuid.uuid4().hex[:8]
    base = os.path.join(work, 'fanout-%d' % n)
    os.makedirs(base, exist_ok=True)
    print('fanout: %d agents in %d processes' % (n, args.agent_procs),
          flush=True)
    vhost = Vhost('fanout')
    catalogue_db = 'bench_catalogue_%s' % tag
    procs = []
    server = None
    catalogue = None
    try:
        # The queue policy README's "Fleet scale" recommends (expire unused
        # agent queues, drop tasks nobody took in time).
        rabbitmqctl('set_policy', '-p', vhost.name, '--apply-to', 'queues',
                    'osbackup-agent-queues', r'^osbackup-agent\.',
                    '{"expires": 604800000, "message-ttl": %d}'
                    % (LOST_AFTER * 1000))
        admin = gen_db.connect(autocommit=True)
        with admin.cursor() as cur:
            cur.execute('CREATE DATABASE `%s`' % catalogue_db)
        admin.close()
        url = DB_URL + catalogue_db
        catalogue = db_api.Catalogue(url)
        catalogue.sync()
        key = write_key(base)
        sections = {
            'DEFAULT': {'host': 'bench-conductor-%s' % tag,
                        'transport_url': vhost.url,
                        'rpc_signing_key_file': key,
                        'state_path': os.path.join(base, 'state'),
                        'log_file': os.path.join(base, 'conductor.log')},
            'database': {'connection': url},
            # Simulated agents heartbeat once only. A lost report times
            # its task out after 30 s instead of 120-300 s.
            'conductor': {'agent_down_time': 86400,
                          'task_start_timeout': LOST_AFTER,
                          'task_silence_timeout': LOST_AFTER,
                          'periodic_interval': 2}}
        for item in args.conductor_set:
            name, value = item.split('=', 1)
            section, option = name.rsplit('.', 1)
            sections.setdefault(section, {})[option] = value
        conductor_conf = write_conf(os.path.join(base, 'conductor.conf'),
                                    sections)
        per_proc = -(-n // args.agent_procs)
        agents_conf = write_conf(os.path.join(base, 'agents.conf'), {
            'DEFAULT': {'transport_url': vhost.url,
                        'rpc_signing_key_file': key,
                        'log_file': os.path.join(base, 'agents.log')},
            'oslo_messaging_rabbit': {
                'rpc_conn_pool_size': max(30, per_proc)}})
        conductor = subprocess.Popen(
            [PYTHON, '-m', 'osbackup.cmd.conductor', '--config-file',
             conductor_conf], stdout=subprocess.DEVNULL, cwd=base,
            stderr=open(os.path.join(base, 'conductor.err'), 'wb'))
        procs.append(conductor)
        # Heartbeats cast before the conductor's queue exists are lost.
        wait_queue(vhost.name, 'osbackup-conductor', conductor,
                   'the conductor', os.path.join(base, 'conductor.err'))
        prefix = 'bench-%s-' % tag
        started = time.monotonic()
        for first in range(0, n, per_proc):
            procs.append(subprocess.Popen(
                [PYTHON, FAKE_AGENTS, '--config-file', agents_conf,
                 '--prefix', prefix, '--first', str(first),
                 '--count', str(min(per_proc, n - first))],
                stdout=subprocess.PIPE, cwd=base,
                stderr=open(os.path.join(base, 'agents-%d.err' % first),
                            'wb'), text=True))
        for first, proc in zip(range(0, n, per_proc), procs[1:]):
            if proc.stdout.readline().strip() != 'ready':
                raise RuntimeError('a fake agent process failed: %s' % (
                    last_error(os.path.join(base, 'agents-%d.err' % first))))
        if 'rpc_signing_key_file' in conf:
            conf.set_override('rpc_signing_key_file', key)
        rpc.init(conf, url=vhost.url)
        pongs = Pongs()
        server = fake_agents.raw_server(fake_agents.PONG_TOPIC,
                                        'bench-%s' % tag, [pongs])
        server.start()
        conductor_api = conductor_rpcapi.ConductorAPI(conf)
        hosts = ['%s%d' % (prefix, i) for i in range(n)]
        # A heartbeat the conductor failed to record (see the notes) is
        # sent again, as a real agent would after [agent] report_interval.
        resent, deadline = 0, time.monotonic() + 120
        next_resend = time.monotonic() + 5
        info = {'drivers': ['nova'], 'services': ['nova']}
        while True:
            known = {a['host'] for a in catalogue.list_agents(86400)}
            missing = [h for h in hosts if h not in known]
            if not missing:
                break
            if time.monotonic() > deadline or conductor.poll() is not None:
                raise RuntimeError('the conductor did not record %d agents;'
                                   ' see %s' % (n, base))
            if time.monotonic() >= next_resend:
                for host in missing:
                    conductor_api.heartbeat(rpc.admin_context(), host,
                                            '0.0.0', info)
                resent += len(missing)
                next_resend = time.monotonic() + 5
            time.sleep(0.2)
        setup_s = time.monotonic() - started

        agent_client = fake_agents.raw_client(rpc.AGENT_TOPIC)
        cproc = psutil.Process(conductor.pid)
        broker = broker_process()
        me = psutil.Process()
        agent_procs = [psutil.Process(p.pid) for p in procs[1:]]

        def agents_cpu():
            return sum(cpu_seconds(p) for p in agent_procs)

        payload = {'id': str(uuid.uuid4()), 'kind': 'backup',
                   'service': 'nova', 'backup_id': 0, 'params': {},
                   'expires_at': '2099-01-01T00:00:00Z'}
        raw = {'s': [], 'cpu': [], 'broker': [], 'agents': []}
        osb = {'s': [], 'dispatch_s': [], 'cpu': [], 'broker': [],
               'agents': [], 'db_connects': []}
        ctxt = rpc.admin_context()
        raw_ctxt = fake_agents.raw_context()
        status = sa.select(models.Backup.status)
        ended_q = sa.select(sa.func.count()).select_from(models.Task).where(
            models.Task.status.in_(states.TASK_DONE))
        closed_early = []
        anomalies = []
        for run in range(args.runs + 1):
            label = 'warm-up' if run == 0 else 'run %d/%d' % (run, args.runs)
            print('fanout %d: %s' % (n, label), flush=True)
            # Raw oslo.messaging round: N directed casts, N casts back.
            pongs.arm(run, n)
            cpu0, b0, a0, t0 = cpu_seconds(me), cpu_seconds(broker), \
                agents_cpu(), time.monotonic()
            for host in hosts:
                agent_client.prepare(server=host).cast(
                    raw_ctxt, 'ping', seq=run, payload=payload)
            if not pongs.done.wait(600):
                raise RuntimeError('raw round: %d of %d pongs'
                                   % (pongs.seen, n))
            t1 = time.monotonic()
            if run:
                raw['s'].append(t1 - t0)
                raw['cpu'].append(cpu_seconds(me) - cpu0)
                raw['broker'].append(cpu_seconds(broker) - b0)
                raw['agents'].append(agents_cpu() - a0)
            # osbackup: backup create until the catalogue has it finished.
            conns0 = db_connections()
            cpu0, b0, a0, t0 = cpu_seconds(cproc), cpu_seconds(broker), \
                agents_cpu(), time.monotonic()
            backup = conductor_api.create_backup(ctxt, [], [])
            t_call = time.monotonic()
            # Done when the backup is closed and all N tasks have ended
            # (the two can differ: see "closed early" in the notes).
            bid = backup['id']
            closed_with = None
            while True:
                with catalogue.engine.connect() as db:
                    state = db.execute(status.where(
                        models.Backup.id == bid)).scalar()
                    ended = db.execute(ended_q.where(
                        models.Task.backup_id == bid)).scalar()
                if state != 'RUNNING' and closed_with is None:
                    closed_with = ended
                if state != 'RUNNING' and ended == n:
                    break
                if time.monotonic() - t0 > 900:
                    raise RuntimeError('backup %s: %s, %d of %d tasks ended'
                                       ' after 900 s' % (bid, state, ended,
                                                         n))
                time.sleep(0.01)
            t1 = time.monotonic()
            cpu1, b1, a1 = cpu_seconds(cproc), cpu_seconds(broker), \
                agents_cpu()
            if closed_with < n:
                closed_early.append(closed_with)
            # Minus this query's own connection.
            conns = db_connections() - conns0 - 1
            done = catalogue.get_backup(backup['id'])
            bad = {}
            for task in done['tasks']:
                if task['status'] != 'SUCCEEDED':
                    bad[task['status']] = bad.get(task['status'], 0) + 1
            if bad or len(done['tasks']) != n or \
                    len(done['artifacts']) != n:
                # A product bug, not a bench failure: keep the figures.
                anomalies.append(
                    'backup %s ended %s with %d tasks (%s not SUCCEEDED) and '
                    '%d artifacts after %.1f s' % (
                        bid, done['status'], len(done['tasks']),
                        ', '.join('%d %s' % (v, k) for k, v in bad.items())
                        or 'none', len(done['artifacts']), t1 - t0))
                print('  ' + anomalies[-1], flush=True)
            elif run:
                osb['s'].append(t1 - t0)
                osb['dispatch_s'].append(t_call - t0)
                osb['cpu'].append(cpu1 - cpu0)
                osb['broker'].append(b1 - b0)
                osb['agents'].append(a1 - a0)
                osb['db_connects'].append(conns)
        rss = proc_status(conductor.pid, 'VmRSS')
        hwm = proc_status(conductor.pid, 'VmHWM')
        threads = proc_status(conductor.pid, 'Threads')
        errors = _conductor_errors(os.path.join(base, 'conductor.log'))
    finally:
        if server is not None:
            server.stop()
            server.wait()
        rpc.cleanup()
        stop_processes(procs)
        if catalogue is not None:
            catalogue.engine.dispose()
        vhost.delete()
        try:
            admin = gen_db.connect(autocommit=True)
            with admin.cursor() as cur:
                cur.execute('DROP DATABASE IF EXISTS `%s`' % catalogue_db)
            admin.close()
        except pymysql.MySQLError as exc:
            print('could not drop %s: %s' % (catalogue_db, exc))

    report.raw.setdefault('fanout', {})[n] = {
        'setup_s': setup_s, 'raw': raw, 'osbackup': osb,
        'heartbeats_resent': resent, 'conductor_errors': errors,
        'closed_early': closed_early, 'anomalies': anomalies,
        'conductor_rss_kb': rss, 'conductor_hwm_kb': hwm,
        'conductor_threads': threads}
    rs, os_ = median(raw['s']), median(osb['s'])
    report.add('fan-out backup, %d agents (%d procs)' % (n, args.agent_procs),
               'raw oslo.messaging: %d casts, %d casts back' % (n, n),
               fmt('%.2f s', rs), fmt('%.2f s', os_), ratio(os_, rs),
               'create_backup call until the catalogue shows SUCCEEDED '
               '(call returned after %s); agents report %s; setup '
               '%.1f s%s' % (
                   fmt('%.2f s', median(osb['dispatch_s'])),
                   'finished only (a quick task: [agent] '
                   'start_report_delay)' if _bench_conf().agent
                   .start_report_delay else 'started + finished', setup_s,
                   _error_note(errors, resent, closed_early, args.runs + 1,
                               anomalies)))

    def per_agent_ms(values):
        value = median(values)
        return None if value is None else value * 1000 / n

    rc, oc = per_agent_ms(raw['cpu']), per_agent_ms(osb['cpu'])
    connects = median(osb['db_connects'])
    report.add('conductor CPU per agent, %d agents' % n,
               'raw caster+listener process', fmt('%.2f ms', rc),
               fmt('%.2f ms', oc), ratio(oc, rc),
               'RabbitMQ CPU per agent %s raw, %s osbackup; simulated '
               'agents\' CPU per agent %s raw, %s osbackup (they share '
               'the cores); new MariaDB '
               'connections per agent (server-wide counter) %s' % (
                   fmt('%.2f ms', per_agent_ms(raw['broker'])),
                   fmt('%.2f ms', per_agent_ms(osb['broker'])),
                   fmt('%.2f ms', per_agent_ms(raw['agents'])),
                   fmt('%.2f ms', per_agent_ms(osb['agents'])),
                   fmt('%.2f', None if connects is None else connects / n)))
    report.add('conductor RSS, %d agents' % n, '-', '-',
               '%.1f MB (peak %.1f MB)' % (rss / 1024, hwm / 1024), None,
               '%d threads' % threads)


def _conductor_errors(log):
    """Count the RPC handler failures in the conductor's log.

    Keyed by the conductor RPC method and the exception class, e.g.
    ``heartbeat DBDeadlock``.
    """
    errors, pending = {}, None
    method = re.compile(r'osbackup/conductor/manager\.py", line \d+, in '
                        r'(\w+)')
    try:
        with open(log, errors='replace') as f:
            for line in f:
                if 'Exception during message handling: ' in line:
                    if pending:
                        errors[pending] = errors.get(pending, 0) + 1
                    exc = line.split('Exception during message handling: '
                                     )[1].split(':')[0].split('.')[-1]
                    pending = '? ' + exc
                elif pending and pending.startswith('? '):
                    found = method.search(line)
                    if found:
                        pending = found.group(1) + pending[1:]
                        errors[pending] = errors.get(pending, 0) + 1
                        pending = None
    except OSError:
        pass
    if pending:
        errors[pending] = errors.get(pending, 0) + 1
    return errors


def _error_note(errors, resent, closed_early, rounds, anomalies):
    out = ''
    if anomalies:
        out += ('; BUG: %d of %d rounds lost tasks (timed out; left out of '
                'the medians): %s' % (len(anomalies), rounds,
                                      '; '.join(anomalies)))
    if closed_early:
        out += ('; BUG: the backup was marked finished while tasks were '
                'still running in %d of %d rounds (with only %s of the '
                'tasks ended)' % (len(closed_early), rounds,
                                  '/'.join(map(str, closed_early))))
    if errors:
        out += '; conductor RPC handler errors: %s' % ', '.join(
            '%d %s' % (v, k) for k, v in sorted(errors.items()))
    if resent:
        out += '; %d first heartbeats lost and re-sent' % resent
    return out


# -- idle --------------------------------------------------------------------

def bench_idle(args, work, report):
    base = os.path.join(work, 'idle')
    node = os.path.join(base, 'node')
    os.makedirs(os.path.join(node, 'etc/nova'))
    with open(os.path.join(node, 'etc/nova/nova.conf'), 'w') as f:
        f.write('[DEFAULT]\n')
    vhost = Vhost('idle')
    procs = []
    try:
        key = write_key(base)
        host = 'bench-idle-%s' % uuid.uuid4().hex[:8]
        agent_conf = write_conf(os.path.join(base, 'agent.conf'), {
            'DEFAULT': {'host': host, 'transport_url': vhost.url,
                        'rpc_signing_key_file': key,
                        'state_path': os.path.join(base, 'state'),
                        'log_file': os.path.join(base, 'agent.log')},
            'agent': {'root_path': node},
            'storage': {'local_path': os.path.join(base, 'storage')}})
        raw_conf = write_conf(os.path.join(base, 'raw.conf'), {
            'DEFAULT': {'transport_url': vhost.url,
                        'rpc_signing_key_file': key,
                        'log_file': os.path.join(base, 'raw.log')}})
        print('idle: starting osbackup-agent and a bare RPC server',
              flush=True)
        agent = subprocess.Popen(
            [PYTHON, '-m', 'osbackup.cmd.agent', '--config-file',
             agent_conf], stdout=subprocess.DEVNULL, cwd=base,
            stderr=open(os.path.join(base, 'agent.err'), 'wb'))
        procs.append(agent)
        raw = subprocess.Popen(
            [PYTHON, FAKE_AGENTS, '--config-file', raw_conf, '--prefix',
             'bench-raw-', '--count', '1', '--no-heartbeat'],
            stdout=subprocess.PIPE, cwd=base,
            stderr=open(os.path.join(base, 'raw.err'), 'wb'), text=True)
        procs.append(raw)
        if raw.stdout.readline().strip() != 'ready':
            raise RuntimeError('the bare RPC server failed: %s'
                               % last_error(os.path.join(base, 'raw.err')))
        wait_queue(vhost.name, 'osbackup-agent.%s' % host, agent,
                   'osbackup-agent', os.path.join(base, 'agent.err'))
        time.sleep(3)       # start-up work (recovery, first heartbeat) ends
        watched = {'osb': psutil.Process(agent.pid),
                   'raw': psutil.Process(raw.pid)}
        cpu0 = {k: cpu_seconds(p) for k, p in watched.items()}
        time.sleep(args.idle_seconds)
        cpu = {k: (cpu_seconds(p) - cpu0[k]) / args.idle_seconds * 100
               for k, p in watched.items()}
        rss = {k: proc_status(p.pid, 'VmRSS') for k, p in watched.items()}
        hwm = {k: proc_status(p.pid, 'VmHWM') for k, p in watched.items()}
        threads = {k: proc_status(p.pid, 'Threads')
                   for k, p in watched.items()}
        conns = {k: len(p.net_connections('tcp'))
                 if hasattr(p, 'net_connections') else len(p.connections())
                 for k, p in watched.items()}
    finally:
        stop_processes(procs)
        vhost.delete()
    report.raw['idle'] = {'seconds': args.idle_seconds, 'cpu_pct': cpu,
                          'rss_kb': rss, 'hwm_kb': hwm, 'threads': threads,
                          'tcp': conns}
    ref = 'bare oslo.messaging RPC server process'
    report.add('idle agent RSS (%d s)' % args.idle_seconds, ref,
               '%.1f MB' % (rss['raw'] / 1024),
               '%.1f MB (peak %.1f MB)' % (rss['osb'] / 1024,
                                           hwm['osb'] / 1024),
               ratio(rss['osb'], rss['raw']),
               'threads %d vs %d; TCP connections %d vs %d' % (
                   threads['osb'], threads['raw'], conns['osb'],
                   conns['raw']))
    report.add('idle agent CPU (%d s)' % args.idle_seconds, ref,
               '%.3f %%' % cpu['raw'], '%.3f %%' % cpu['osb'],
               ratio(cpu['osb'], cpu['raw']),
               'of one core, at the 10 ms tick of CPU accounting (%.3f %% '
               'over %d s); heartbeat every [agent] report_interval' % (
                   1.0 / args.idle_seconds, args.idle_seconds))


# -- main --------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[2:]))
    pick = parser.add_argument_group('sub-benchmarks (default: all)')
    for name in ('files', 'db', 'fanout', 'idle'):
        pick.add_argument('--' + name, action='store_true')
    pick.add_argument('--physical', action='store_true',
                      help='mariabackup driver vs mariadb-backup | zstd')
    parser.add_argument('--full', action='store_true',
                        help='the sizes of issue 7 (explicit size flags '
                             'still win)')
    parser.add_argument('--runs', type=int, default=2,
                        help='timed runs per figure; the median is shown '
                             '(default 2)')
    sizes = parser.add_argument_group('sizes')
    sizes.add_argument('--tree-files', type=int)
    sizes.add_argument('--tree-big', type=int)
    sizes.add_argument('--tree-big-mb', type=int)
    sizes.add_argument('--tree-big-spread-mb', type=int)
    sizes.add_argument('--tree-dir',
                       help='generate (or reuse) the tree here and keep it')
    sizes.add_argument('--db-mb', type=int,
                       help='MB of database rows (default 100)')
    sizes.add_argument('--agents',
                       help='simulated agents, comma-separated for several '
                            'rounds (default 50)')
    sizes.add_argument('--agent-procs', type=int, default=4,
                       help='processes hosting the simulated agents')
    sizes.add_argument('--idle-seconds', type=int, default=20)
    parser.add_argument('--conductor-set', action='append', default=[],
                        metavar='SECTION.KEY=VALUE',
                        help='extra option of the fan-out conductor\'s '
                             'config, e.g. database.max_pool_size=64 '
                             '(repeatable)')
    parser.add_argument('--workdir', default=os.environ.get(
        'OSBACKUP_BENCH_WORKDIR', '/var/tmp'),
        help='where the temporary directory of trees and outputs goes (one '
             'filesystem for inputs and outputs)')
    parser.add_argument('--keep', action='store_true',
                        help='keep the work directory and bench databases')
    parser.add_argument('--no-drop-caches', action='store_true',
                        help='do not drop the page cache before timed runs')
    parser.add_argument('--json', metavar='FILE',
                        help='also write every figure to FILE')
    args = parser.parse_args(argv)
    quick = {'tree_files': 2000, 'tree_big': 2, 'tree_big_mb': 50,
             'tree_big_spread_mb': 0, 'db_mb': 100, 'agents': '50'}
    for key, value in (FULL if args.full else quick).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not any((args.files, args.db, args.fanout, args.idle,
                args.physical)):
        args.files = args.db = args.fanout = args.idle = True
        args.physical = True
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report = Report(drop=not args.no_drop_caches)
    if args.no_drop_caches:
        report.cache = 'warm cache'
    work = tempfile.mkdtemp(prefix='osbackup-bench-', dir=args.workdir)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    failures = []
    try:
        for name, func in (('files', bench_files), ('db', bench_db),
                           ('physical', bench_physical),
                           ('fanout', bench_fanout), ('idle', bench_idle)):
            if getattr(args, name):
                try:
                    func(args, work, report)
                except Exception as exc:    # report, go on with the others
                    failures.append('%s: %s' % (name, exc))
                    report.add(name, '-', 'failed', 'failed', None,
                               str(exc)[:200])
    finally:
        if args.keep:
            print('kept %s' % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    header = ('osbackup benchmarks: %d cores, %s, Python %s; medians of %d '
              'runs; %s; %.0f s in all; load average %.1f before, %.1f '
              'after (other work on the machine skews figures)' % (
                  os.cpu_count(), platform.machine(),
                  platform.python_version(), args.runs, report.cache,
                  time.monotonic() - started, load_before,
                  os.getloadavg()[0]))
    print()
    print(header)
    print('ratio = osbackup / reference (below 1: osbackup is faster or '
          'smaller)')
    print(report.table())
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'header': header, 'args': vars(args),
                       'rows': report.rows, 'raw': report.raw,
                       'failures': failures}, f, indent=1, default=str)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())

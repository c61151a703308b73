#!/usr/bin/env python3
"""Generate a deterministic, OpenStack-node-like file tree for benchmarks.

The tree holds ``--files`` small configuration, log and code files (1-8 KB
of semi-compressible text) spread over ``etc/<svc>``, ``var/lib/<svc>`` and
``var/log/<svc>`` of nova, glance, keystone, cinder and neutron, plus
``--big`` large files of ``--big-mb`` MB (up to ``--big-spread-mb`` more)
made of fresh random blocks, repeated random blocks and log-like text, so
that ``zstd -1`` compresses them about 2.5x and gzip a little less.

The same arguments always give the same bytes, names and mtimes. A stamp
file (``.gen_tree.json`` in DIR, outside the ``etc`` and ``var`` trees that
benchmarks archive) lets a second run with the same arguments reuse the
tree.

Quick default: 2,000 files + 2 x 50 MB. The size of issue 7::

    gen_tree.py DIR --files 20000 --big 5 --big-mb 200 --big-spread-mb 75
"""

import argparse
import json
import os
import random
import shutil
import sys
import time

SERVICES = ('nova', 'glance', 'keystone', 'cinder', 'neutron')
STAMP = '.gen_tree.json'
TOPS = ('etc', 'var')
# Fixed mtime (2024-01-01) so the tree, and so its archives, repeat.
MTIME = 1704067200
MB = 1 << 20
BLOCK = 64 * 1024
FILES_PER_DIR = 60

WORDS = (
    'instance server volume image network port subnet router flavor host '
    'compute scheduler conductor api keystone token project domain user '
    'role glance cinder neutron nova placement allocation resource provider '
    'inventory trait aggregate cell mapping request spec build migration '
    'snapshot backup attachment connector iscsi rbd libvirt qemu kvm vif '
    'ovs bridge tap dhcp agent l3 metadata security group rule ingress '
    'egress tcp udp icmp state active error building deleted shutoff '
    'power_state task_state vm_state uuid created updated deleted_at '
    'rabbit transport notification oslo messaging database connection pool '
    'timeout retry lock semaphore periodic task heartbeat report interval '
    'quota usage reservation limit default public private shared external '
    'availability zone region endpoint catalog service interface admin '
    'internal'
).split()
LEVELS = ('DEBUG', 'INFO', 'INFO', 'INFO', 'WARNING', 'ERROR')
MODULES = ('nova.compute.manager', 'nova.scheduler.host_manager',
           'nova.conductor.manager', 'oslo_messaging._drivers.amqpdriver',
           'glance.api.v2.images', 'keystone.server.flask.request_processing',
           'cinder.volume.manager', 'neutron.agent.dhcp.agent',
           'oslo_service.periodic_task', 'neutron.plugins.ml2.plugin')
KINDS = (('etc', 'conf', 0.15), ('var/lib', 'py', 0.40),
         ('var/log', 'log', 0.45))


def _uuid(rnd):
    h = '%032x' % rnd.getrandbits(128)
    return '%s-%s-%s-%s-%s' % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def _sentence(rnd, n):
    return ' '.join(rnd.choice(WORDS) for _ in range(n))


def log_lines(rnd, nbytes, start=0.0):
    """Log-like lines: timestamps, request ids, resource uuids, prose.

    As in real logs, a request spans a few lines and the same resources
    come back again and again.
    """
    out, size, t = [], 0, 1704067200.0 + start
    pid = rnd.randint(1000, 60000)
    uuids = [_uuid(rnd) for _ in range(40)]
    req = _uuid(rnd)
    while size < nbytes:
        t += rnd.random() * 2
        if rnd.random() < 0.25:
            req = _uuid(rnd)
        line = '%s.%03d %d %s %s [req-%s - - - - -] [instance: %s] %s\n' % (
            time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(t)),
            int(t * 1000) % 1000, pid, rnd.choice(LEVELS),
            rnd.choice(MODULES), req, rnd.choice(uuids),
            _sentence(rnd, rnd.randint(4, 14)))
        out.append(line)
        size += len(line)
    return ''.join(out)


def conf_text(rnd, nbytes):
    out, size = [], 0
    while size < nbytes:
        section = '[%s]\n' % rnd.choice(WORDS)
        out.append(section)
        size += len(section)
        for _ in range(rnd.randint(3, 12)):
            line = '# %s\n%s_%s = %s\n' % (
                _sentence(rnd, rnd.randint(5, 15)), rnd.choice(WORDS),
                rnd.choice(WORDS), rnd.choice(
                    [str(rnd.randint(0, 10000)), _uuid(rnd),
                     rnd.choice(WORDS), 'True', 'False']))
            out.append(line)
            size += len(line)
    return ''.join(out)


def code_text(rnd, nbytes):
    out, size = ['"""%s."""\n\nimport os\n\n' % _sentence(rnd, 8)], 0
    while size < nbytes:
        name = '_'.join(rnd.choice(WORDS) for _ in range(2))
        args = ', '.join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 4)))
        body = ''.join('    %s = %s.%s(%s)\n' % (
            rnd.choice(WORDS), rnd.choice(WORDS), rnd.choice(WORDS),
            rnd.randint(0, 999)) for _ in range(rnd.randint(2, 8)))
        func = ('\ndef %s(%s):\n    """%s."""\n%s    return %s\n' %
                (name, args, _sentence(rnd, rnd.randint(5, 12)), body,
                 rnd.choice(WORDS)))
        out.append(func)
        size += len(func)
    return ''.join(out)


def _write(path, data):
    with open(path, 'wb') as f:
        f.write(data)
    os.utime(path, (MTIME, MTIME))


def small_files(root, count, rnd):
    """Write ``count`` files of 1-8 KB; return their total size."""
    total = 0
    dirs = {}
    for i in range(count):
        svc = SERVICES[i % len(SERVICES)]
        pick = rnd.random()
        for base, ext, share in KINDS:
            if pick < share:
                break
            pick -= share
        key = (base, svc, ext)
        n = dirs.get(key, 0)
        dirs[key] = n + 1
        sub = os.path.join(root, base, svc, 'd%03d' % (n // FILES_PER_DIR))
        if n % FILES_PER_DIR == 0:
            os.makedirs(sub, exist_ok=True)
        size = rnd.randint(1024, 8192)
        text = {'conf': conf_text, 'py': code_text,
                'log': log_lines}[ext](rnd, size)[:size]
        name = os.path.join(sub, '%s-%05d.%s' % (rnd.choice(WORDS), i, ext))
        data = text.encode()
        _write(name, data)
        total += len(data)
    return total


def big_file(path, size, rnd):
    """Random blocks, repeated random blocks and text: ~2.5x with zstd -1."""
    pool = [rnd.randbytes(BLOCK) for _ in range(4)]
    text = log_lines(rnd, 4 * MB).encode()
    written = 0
    with open(path, 'wb') as f:
        while written < size:
            pick = rnd.random()
            if pick < 0.24:
                block = rnd.randbytes(BLOCK)            # incompressible
            elif pick < 0.30:
                block = rnd.choice(pool)                # repeated block
            else:
                start = rnd.randrange(len(text) - BLOCK)
                block = text[start:start + BLOCK]       # log text
            block = block[:size - written]
            f.write(block)
            written += len(block)
    os.utime(path, (MTIME, MTIME))
    return written


BIG_PLACES = ('var/lib/glance/staging', 'var/lib/nova/buckets',
              'var/lib/cinder/conversion', 'var/lib/neutron/ha_confs',
              'var/lib/keystone/cache')


def generate(root, files=2000, big=2, big_mb=50, big_spread_mb=0, seed=7):
    """Create the tree at ``root`` (reused when its stamp matches)."""
    params = {'files': files, 'big': big, 'big_mb': big_mb,
              'big_spread_mb': big_spread_mb, 'seed': seed, 'version': 1}
    stamp = os.path.join(root, STAMP)
    try:
        with open(stamp) as f:
            info = json.load(f)
        if info.get('params') == params:
            return info
    except (OSError, ValueError):
        if os.path.isdir(root) and os.listdir(root) and \
                not os.path.exists(stamp):
            # Never replace the etc/ and var/ of a directory we did not make.
            raise SystemExit('%s is not empty and was not made by '
                             'gen_tree.py; give an empty or new directory'
                             % root)
    if os.path.exists(stamp):
        os.unlink(stamp)     # an interrupted run must not look complete
    for top in TOPS:
        shutil.rmtree(os.path.join(root, top), ignore_errors=True)
    os.makedirs(root, exist_ok=True)
    rnd = random.Random(seed)
    started = time.monotonic()
    total = small_files(root, files, rnd)
    for i in range(big):
        place = os.path.join(root, BIG_PLACES[i % len(BIG_PLACES)])
        os.makedirs(place, exist_ok=True)
        size = (big_mb + (big_spread_mb * i // max(1, big - 1)
                          if big_spread_mb else 0)) * MB
        total += big_file(os.path.join(place, 'blob-%02d.img' % i), size, rnd)
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        count += len(filenames)
        if dirpath != root:
            os.utime(dirpath, (MTIME, MTIME))
    info = {'params': params, 'files': count, 'bytes': total,
            'seconds': round(time.monotonic() - started, 2)}
    with open(stamp, 'w') as f:
        json.dump(info, f)
    for top in TOPS:
        os.utime(os.path.join(root, top), (MTIME, MTIME))
    return info


def add_arguments(parser):
    parser.add_argument('--files', type=int, default=2000,
                        help='small files (default 2000; issue 7: 20000)')
    parser.add_argument('--big', type=int, default=2,
                        help='big files (default 2; issue 7: 5)')
    parser.add_argument('--big-mb', type=int, default=50,
                        help='MB of each big file (default 50; issue 7: '
                             '200)')
    parser.add_argument('--big-spread-mb', type=int, default=0,
                        help='the big files grow evenly from --big-mb to '
                             '--big-mb + this (issue 7: 75)')
    parser.add_argument('--seed', type=int, default=7)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dir')
    add_arguments(parser)
    args = parser.parse_args(argv)
    info = generate(args.dir, args.files, args.big, args.big_mb,
                    args.big_spread_mb, args.seed)
    json.dump(info, sys.stdout)
    print()


if __name__ == '__main__':
    main()

"""Stand-in daemons for restore tests, driven by the command manager.

``standin.py --dir D --root R start|stop|status UNIT`` starts, stops or
checks a small real process per unit and appends every start and stop to
``D/events.log`` with a timestamp and the sha256 of the unit's config file
at that moment, so tests can tell what the unit saw when it ran. A
started daemon reads its service's configuration under the node root and
exits at once when it contains ``BROKEN``: a service that fails to start
on a bad restored config.
"""

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import time


def _pidfile(d, unit):
    return os.path.join(d, unit + '.pid')


def _alive(d, unit):
    try:
        with open(_pidfile(d, unit)) as f:
            pid = int(f.read())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    # A zombie (exited, not reaped) is not running.
    try:
        with open('/proc/%d/stat' % pid) as f:
            if f.read().split()[2] == 'Z':
                return None
    except FileNotFoundError:
        return None
    return pid


def _event(d, root, what, unit):
    """Log the action with a digest of the unit's config at that moment."""
    try:
        with open(_config(root, unit), 'rb') as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        digest = 'missing'
    with open(os.path.join(d, 'events.log'), 'a') as f:
        f.write('%.6f %s %s %s\n' % (time.time(), what, unit, digest))


def _config(root, unit):
    service = unit.split('-')[0]
    return os.path.join(root, 'etc', service, '%s.conf' % service)


def run(root, unit):
    """The daemon itself: refuse a broken config, else idle."""
    try:
        with open(_config(root, unit)) as f:
            if 'BROKEN' in f.read():
                sys.exit(1)
    except FileNotFoundError:
        pass
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    while True:
        time.sleep(60)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('--dir', required=True)
    parser.add_argument('--root', required=True)
    parser.add_argument('action', choices=['start', 'stop', 'status', 'run'])
    parser.add_argument('unit')
    args = parser.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    if args.action == 'run':
        return run(args.root, args.unit)
    pid = _alive(args.dir, args.unit)
    if args.action == 'status':
        return 0 if pid else 3
    if args.action == 'stop':
        if pid:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not _alive(args.dir, args.unit):
                    break
                time.sleep(0.05)
        _event(args.dir, args.root, 'stop', args.unit)
        return 0
    if pid:
        return 0
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), '--dir', args.dir,
         '--root', args.root, 'run', args.unit],
        start_new_session=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(_pidfile(args.dir, args.unit), 'w') as f:
        f.write(str(child.pid))
    _event(args.dir, args.root, 'start', args.unit)
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""A Galera node of galera_cluster.py as the unit ``mariadb`` of a host.

``galera_unit.py --node DIR start|stop|status|bootstrap UNIT`` is what the
agents' command service manager runs ([service_command] templates and
[galera] bootstrap_command): it starts the node's private mariadbd (its
command line in ``DIR/argv.json``), with ``--wsrep-new-cluster`` for
``bootstrap``, stops it (SIGTERM, a clean shutdown) or says whether it
runs. ``start`` returns once the server runs (a joiner answers only after
its SST, which the agent waits for); ``bootstrap`` once it answers, like
galera_new_cluster. A file ``DIR/fail-next-start`` makes the next start
fail (and is removed): a member that cannot rejoin; holding a number N,
the next N starts.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

START_GRACE = 2
STOP_TIMEOUT = 120
READY_TIMEOUT = 120
PID_FILES = ('unit.pid', 'mysqld.pid')


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (ProcessLookupError, FileNotFoundError):
        return False


def running(node: str) -> int | None:
    """The pid of the node's server, if it runs."""
    for name in PID_FILES:
        try:
            with open(os.path.join(node, name)) as f:
                pid = int(f.read().strip())
        except (FileNotFoundError, ValueError):
            continue
        if alive(pid):
            return pid
    return None


def start(node: str, bootstrap: bool) -> int:
    if running(node):
        return 0
    marker = os.path.join(node, 'fail-next-start')
    if os.path.exists(marker):
        with open(marker) as f:
            left = int(f.read().strip() or 1) - 1
        if left > 0:
            with open(marker, 'w') as f:
                f.write(str(left))
        else:
            os.unlink(marker)
        print('start of the server refused (fail-next-start)',
              file=sys.stderr)
        return 1
    with open(os.path.join(node, 'argv.json')) as f:
        argv = json.load(f)
    if bootstrap:
        argv.append('--wsrep-new-cluster')
    with open(os.path.join(node, 'unit.out'), 'ab') as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out, start_new_session=True)
    with open(os.path.join(node, 'unit.pid'), 'w') as f:
        f.write(str(proc.pid))
    deadline = time.monotonic() + (READY_TIMEOUT if bootstrap
                                   else START_GRACE)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print('mariadbd exited with status %d' % proc.returncode,
                  file=sys.stderr)
            return 1
        if bootstrap and os.path.exists(os.path.join(node, 'mysqld.sock')) \
                and subprocess.run(
                    ['mariadb-admin', '--no-defaults', '-uroot', '-S',
                     os.path.join(node, 'mysqld.sock'), 'ping'],
                    capture_output=True).returncode == 0:
            return 0
        time.sleep(0.2)
    return 1 if bootstrap else 0


def stop(node: str) -> int:
    pid = running(node)
    if pid is None:
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    # What systemd does with the unit's cgroup: an SST script the server
    # started (its own session) goes with it.
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--node', required=True)
    parser.add_argument('action', choices=('start', 'stop', 'status',
                                           'bootstrap'))
    parser.add_argument('unit')
    args = parser.parse_args()
    if args.action in ('start', 'bootstrap'):
        return start(args.node, args.action == 'bootstrap')
    if args.action == 'stop':
        return stop(args.node)
    return 0 if running(args.node) else 3


if __name__ == '__main__':
    sys.exit(main())

"""A mysqldump that misbehaves on demand, for fault tests.

The file named by ``OSBACKUP_DUMP_MODE_FILE`` says what to do; without it
this is the real mysqldump (exec'd with the same arguments, so the
credentials keep coming on /dev/fd/N):

``hold``
    touch ``<mode file>.started``, wait until the mode file is removed,
    then run the real dump: the test decides when the dump goes on (time
    to look at /proc, to kill a process or to start a second backup
    while the task runs);
``fail-midstream``
    run the real dump, pass on the first half of its output, print a
    lost-connection error and exit 2, as a dump cut off by the server.
"""

import os
import subprocess
import sys
import time

REAL = os.environ.get('OSBACKUP_REAL_MYSQLDUMP', 'mysqldump')


def _fds(argv):
    return [int(arg.rsplit('/', 1)[1]) for arg in argv
            if arg.startswith('--defaults-extra-file=/dev/fd/')]


def main():
    argv = sys.argv[1:]
    mode_file = os.environ.get('OSBACKUP_DUMP_MODE_FILE', '')
    try:
        with open(mode_file) as f:
            mode = f.read().strip()
    except OSError:
        mode = ''
    if mode == 'hold':
        open(mode_file + '.started', 'w').close()
        deadline = time.monotonic() + 600
        while os.path.exists(mode_file) and time.monotonic() < deadline:
            time.sleep(0.1)
    if mode != 'fail-midstream':
        os.execvp(REAL, [REAL] + argv)
    proc = subprocess.run([REAL] + argv, stdout=subprocess.PIPE,
                          pass_fds=_fds(argv), check=False)
    sys.stdout.buffer.write(proc.stdout[:len(proc.stdout) // 2])
    sys.stdout.flush()
    sys.stderr.write('mysqldump: Error 2013: Lost connection to server '
                     'during query when dumping table (simulated)\n')
    return 2


if __name__ == '__main__':
    sys.exit(main())

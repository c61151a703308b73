"""A mysql client that fails part-way through a load, for fault tests.

Queries (``-e``) pass straight to the real client. A load (SQL on stdin)
passes to the real client too, unless the file named by the
``OSBACKUP_FAIL_LOAD_FLAG`` environment variable exists (it is removed,
so only one load fails): then only the
first half of the input reaches the server before this exits 1, leaving a
half-loaded database behind, as a client killed mid-load would.
"""

import os
import subprocess
import sys


def main():
    argv = sys.argv[1:]
    flag = os.environ.get('OSBACKUP_FAIL_LOAD_FLAG', '')
    real = ['mysql'] + argv
    if '-e' in argv or not flag or not os.path.exists(flag):
        os.execvp('mysql', real)
    os.unlink(flag)     # one failure: the rollback's reload must work
    data = sys.stdin.buffer.read()
    proc = subprocess.Popen(real, stdin=subprocess.PIPE,
                            pass_fds=_fds(argv))
    proc.communicate(data[:len(data) // 2])
    sys.stderr.write('ERROR 2013 (HY000): Lost connection to server during '
                     'query (simulated)\n')
    return 1


def _fds(argv):
    # The credentials come on /dev/fd/N; keep that descriptor open.
    fds = []
    for arg in argv:
        if arg.startswith('--defaults-extra-file=/dev/fd/'):
            fds.append(int(arg.rsplit('/', 1)[1]))
    return fds


if __name__ == '__main__':
    sys.exit(main())

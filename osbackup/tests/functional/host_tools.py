"""Programs the functional tests run, installed on demand or skipped loudly.

A test that runs a program of the host (a private sshd, mariadb-backup,
zstd...) calls ``require(TOOL)`` first. When every command of the tool is
there it returns their paths. Otherwise, running as root on a Debian-like
host, it installs the tool's package with apt-get (once per process; apt's
lock serialises the test workers) and checks again. When the program is
still missing, cannot be installed, or installs are off
(``OSBACKUP_TEST_INSTALL=0``), the test is skipped with a reason naming
the program, the tests that need it and the command that installs it, so
that the run's skip summary (``tools/skip_summary.py``) says exactly what
was not tested and why. A missing program is never a failure of osbackup.
"""

import dataclasses
import logging
import os
import shutil
import subprocess
import threading
import unittest

LOG = logging.getLogger(__name__)

#: Set to 0 to never install anything (skip instead).
INSTALL_ENV = 'OSBACKUP_TEST_INSTALL'
_APT_TIMEOUT = 600
# Programs in sbin are not on every user's PATH.
_SBIN = ('/usr/local/sbin', '/usr/sbin', '/sbin')


@dataclasses.dataclass(frozen=True)
class Tool:
    """Commands of one Debian package that some tests run."""

    #: Executables: names looked up on PATH (and sbin) or absolute paths.
    commands: tuple[str, ...]
    #: The Debian package that provides them.
    package: str
    #: Which tests need them, for the skip reason.
    needed_by: str


SSHD = Tool(commands=(os.environ.get('OSBACKUP_TEST_SSHD', '/usr/sbin/sshd'),
                      'ssh', 'ssh-keygen'),
            package='openssh-server',
            needed_by='the off-site (ssh) storage and policy tests')
MARIADB_BACKUP = Tool(commands=('mariadb-backup', 'mbstream'),
                      package='mariadb-backup',
                      needed_by='the physical (mariabackup) driver tests')
MARIADB_SERVER = Tool(commands=('mariadb-install-db', 'mariadbd',
                                'mariadb-admin', 'mariadb'),
                      package='mariadb-server',
                      needed_by='the tests running a private MariaDB server')
FAKETIME = Tool(commands=('faketime',), package='faketime',
                needed_by='the clock skew tests (agents with a shifted '
                          'clock, through libfaketime)')
ZSTD = Tool(commands=('zstd', 'tar'), package='zstd',
            needed_by='the tests unpacking archives with tar --zstd')
OVN = Tool(commands=('ovsdb-server', 'ovsdb-client', 'ovsdb-tool',
                     'ovn-nbctl'),
           package='ovn-central',
           needed_by='the OVN driver tests (a private ovsdb-server with the '
                     'OVN northbound schema)')

_lock = threading.Lock()
# package -> skip reason, for the packages this process could not provide.
_unavailable: dict[str, str] = {}


def find(command: str) -> str | None:
    """The path of ``command``, or None."""
    if os.path.isabs(command):
        return command if os.access(command, os.X_OK) else None
    path = os.environ.get('PATH', os.defpath).split(os.pathsep)
    return shutil.which(command, path=os.pathsep.join(
        path + [d for d in _SBIN if d not in path]))


def _missing(tool: Tool) -> list[str]:
    return [c for c in tool.commands if find(c) is None]


def _why_not_install(tool: Tool) -> str | None:
    if os.environ.get(INSTALL_ENV, '1') == '0':
        return '%s=0 turns automatic installs off' % INSTALL_ENV
    if os.geteuid() != 0:
        return 'not running as root, so not installing it'
    if find('apt-get') is None:
        return 'no apt-get on this host to install it with'
    return None


def _apt_get(*argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    return subprocess.run(
        ['apt-get', '-y', '-q', '-o', 'DPkg::Lock::Timeout=%d' % _APT_TIMEOUT]
        + list(argv), env=env, capture_output=True, text=True,
        timeout=_APT_TIMEOUT, stdin=subprocess.DEVNULL)


def _install(tool: Tool) -> str | None:
    """Install the tool's package; None or why it failed."""
    LOG.warning('%s missing: installing %s for %s', ' '.join(_missing(tool)),
                tool.package, tool.needed_by)
    install = ('install', '--no-install-recommends', tool.package)
    try:
        proc = _apt_get(*install)
        if proc.returncode:
            # A fresh container has no package lists yet.
            _apt_get('update')
            proc = _apt_get(*install)
    except subprocess.TimeoutExpired:
        return 'apt-get install %s did not finish within %d s' % (
            tool.package, _APT_TIMEOUT)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ['no output'])[-1]
        return 'apt-get install %s failed (exit %d: %s)' % (
            tool.package, proc.returncode, last)
    return None


def require(tool: Tool) -> dict[str, str]:
    """{command: path} of the tool's commands, installing them if need be.

    Raises unittest.SkipTest with the reason when they cannot be had.
    """
    with _lock:
        if tool.package not in _unavailable and _missing(tool):
            problem = _why_not_install(tool) or _install(tool)
            still = _missing(tool)
            if still:
                _unavailable[tool.package] = (
                    'SKIPPED, NOT TESTED: %s needs %s (package %s), missing '
                    'here: %s. Install it with "apt-get install %s" to run '
                    'these tests.' % (tool.needed_by, ' '.join(still),
                                      tool.package, problem or 'installed '
                                      'but still not found', tool.package))
        if tool.package in _unavailable:
            raise unittest.SkipTest(_unavailable[tool.package])
        return {c: find(c) for c in tool.commands}

"""Node trees made of real Debian packages' files.

Backup and restore tests build their trees by hand, and miss what real
packages ship: Debian's swift has ``/etc/swift/backups`` as a link to
``/var/backups/swift``, which once made every swift backup unrestorable.
``node_tree`` unpacks the packages of the OpenStack services into a node
root with ``dpkg-deb -x`` (maintainer scripts do not run), so a test backs
up and restores exactly what the packages put there: links, modes, empty
state directories.  The ``.deb`` files are fetched once with ``apt-get
download`` and kept under ``~/.cache/osbackup-tests/debs``.
"""

import glob
import os
import shutil
import subprocess
import unittest

from osbackup import definitions

#: osbackup service -> the Debian packages shipping its files.
PACKAGES = {'swift': ('swift',), 'nova': ('nova-common',),
            'keystone': ('keystone',), 'glance': ('glance-common',),
            'cinder': ('cinder-common',), 'neutron': ('neutron-common',),
            'placement': ('placement-common',), 'heat': ('heat-common',),
            'horizon': ('openstack-dashboard',),
            'octavia': ('octavia-common',),
            'barbican': ('barbican-common',),
            'designate': ('designate-common',),
            'libvirt': ('libvirt-daemon-system', 'ceph-common')}
ALL_DEBS = tuple(p for debs in PACKAGES.values() for p in debs)
#: osbackup service -> the Debian package shipping its database migrations.
CODE_PACKAGES = {s: 'python3-%s' % s for s in (
    'nova', 'keystone', 'glance', 'cinder', 'neutron', 'placement', 'heat',
    'octavia', 'barbican', 'designate')}
CACHE = os.path.expanduser('~/.cache/osbackup-tests/debs')
_APT_TIMEOUT = 300


def _cached(package: str) -> str | None:
    found = sorted(glob.glob(os.path.join(CACHE, '%s_*.deb' % package)))
    return found[-1] if found else None


def _download(packages: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(['apt-get', 'download', *packages], cwd=CACHE,
                          capture_output=True, text=True,
                          timeout=_APT_TIMEOUT)


def fetch(packages=ALL_DEBS) -> dict[str, str]:
    """{package: path of its .deb}, downloading the ones not cached.

    Raises unittest.SkipTest, saying why, when apt cannot get them.
    """
    for tool in ('apt-get', 'dpkg-deb'):
        if shutil.which(tool) is None:
            raise unittest.SkipTest('Debian package trees need %s, which '
                                    'is not installed (not a Debian host?)'
                                    % tool)
    os.makedirs(CACHE, exist_ok=True)
    missing = [p for p in packages if _cached(p) is None]
    if missing:
        try:
            proc = _download(missing)
            if proc.returncode:
                # A fresh container has no package lists yet.
                subprocess.run(['apt-get', 'update'], capture_output=True,
                               timeout=_APT_TIMEOUT)
                proc = _download(missing)
        except subprocess.TimeoutExpired:
            raise unittest.SkipTest(
                'apt-get could not download %s within %d s: no Debian '
                'mirror reachable?' % (' '.join(missing), _APT_TIMEOUT))
        if proc.returncode:
            lines = proc.stderr.strip().splitlines() or ['no output']
            raise unittest.SkipTest(
                'apt-get download %s failed (exit %d: %s); Debian package '
                'trees cannot be built without a reachable mirror'
                % (' '.join(missing), proc.returncode, lines[-1]))
    return {p: _cached(p) for p in packages}


def node_tree(root: str, services=tuple(PACKAGES)) -> None:
    """Unpack the packages of ``services`` into the node root ``root``."""
    debs = fetch(tuple(p for s in services for p in PACKAGES[s]))
    for deb in debs.values():
        unpack(deb, root)


def unpack(deb: str, root: str) -> None:
    """The files of one package under ``root`` (no maintainer scripts)."""
    os.makedirs(root, exist_ok=True)
    subprocess.run(['dpkg-deb', '-x', deb, root], check=True,
                   capture_output=True)


def service_paths(service: str, root: str) -> list[str]:
    """The absolute paths osbackup's driver archives that the tree has."""
    definition = definitions.builtin()[service]
    return [p for p in definition.paths + definition.log_paths
            if os.path.lexists(os.path.join(root, p.lstrip('/')))]

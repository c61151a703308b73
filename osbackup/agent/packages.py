"""Installed versions of the services' packages, asked of dpkg and cached.

One ``dpkg-query -W`` run answers for every package at once; answers are
kept ``[agent] package_versions_interval`` seconds, so the heartbeat and
the backups it stamps cost one process every few minutes. Without dpkg
(or with the interval 0) nothing is known and nothing is run.
"""

import shutil
import subprocess
import threading
import time

from oslo_log import log as logging

from osbackup import definitions
from osbackup import version

LOG = logging.getLogger(__name__)

DPKG_QUERY = 'dpkg-query'
QUERY_TIMEOUT = 30


class PackageVersions:
    """``{package: version}`` of installed packages, refreshed lazily."""

    def __init__(self, interval: int, run=subprocess.run,
                 clock=time.monotonic, which=shutil.which):
        self.interval = interval
        self._run = run
        self._clock = clock
        self._which = which
        self._lock = threading.Lock()
        self._known = {}        # package: (version or None, when asked)

    def versions(self, packages) -> dict[str, str]:
        """The installed version of each of ``packages`` known to dpkg."""
        packages = sorted({p for p in packages if p})
        if not packages or self.interval <= 0:
            return {}
        with self._lock:
            now = self._clock()
            stale = [p for p in packages if p not in self._known or
                     now - self._known[p][1] >= self.interval]
            if stale:
                found = self._query(stale)
                for package in stale:
                    self._known[package] = (found.get(package), now)
            return {p: self._known[p][0] for p in packages
                    if self._known[p][0]}

    def of_services(self, services) -> dict[str, str]:
        """{package: version} of the services' definitions' packages."""
        known = definitions.builtin()
        return self.versions(known[s].package for s in services
                             if s in known)

    def stamp(self, service: str) -> dict:
        """What a backup of ``service`` records in its artifacts' meta.

        The agent's osbackup version and, when dpkg knows it, the
        service's package and its version.
        """
        out = {'osbackup_version': version.version_string()}
        definition = definitions.builtin().get(service)
        package = definition.package if definition else ''
        installed = self.versions([package]).get(package)
        if installed:
            out['package'] = {'name': package, 'version': installed}
        return out

    def _query(self, packages) -> dict[str, str]:
        if not self._which(DPKG_QUERY):
            return {}
        try:
            proc = self._run(
                [DPKG_QUERY, '-W', '-f=${Package}\\t${Version}\\t'
                 '${db:Status-Abbrev}\\n'] + packages,
                stdin=subprocess.DEVNULL, capture_output=True,
                timeout=QUERY_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            LOG.warning('%s failed: %s', DPKG_QUERY, exc)
            return {}
        # Exit status 1 only says some package is unknown; the rest is
        # still listed.
        out = {}
        for line in proc.stdout.decode('utf-8', 'replace').splitlines():
            fields = line.split('\t')
            # "ii " installed; "rc " removed with its configuration kept.
            if len(fields) == 3 and fields[1] and fields[2].startswith('ii'):
                out[fields[0].split(':')[0]] = fields[1]
        return out

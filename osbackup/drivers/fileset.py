"""Declarative file-set drivers: a service is its directories and units.

A subclass names its configuration, state and log directories, the large
subtrees that are left out unless asked for, and its option group; this
class archives them into one artifact per (host, service). Backups never
stop the service: archiving files needs no outage.
"""

import os

from osbackup import archive
from osbackup.drivers import base
from osbackup import streams


class FileSetDriver(base.ServiceDriver):
    """Archive ``/etc/<svc>``, ``/var/lib/<svc>`` and ``/var/log/<svc>``."""

    #: Directories that hold configuration and state.
    PATHS: tuple = ()
    #: Log directories, included unless ``[<svc>] include_logs`` is off.
    LOG_PATHS: tuple = ()
    #: (option name, path) pairs of subtrees excluded unless the option is on.
    OPTIONAL_PATHS: tuple = ()
    #: A file or directory whose presence means the service is installed.
    MARKERS: tuple = ()

    @property
    def options(self):
        return self.conf[self.name]

    def paths(self) -> list[str]:
        """Absolute service paths this host's backup covers."""
        paths = list(self.PATHS)
        if self.options.include_logs:
            paths.extend(self.LOG_PATHS)
        return paths

    def excludes(self) -> list[str]:
        return [path for option, path in self.OPTIONAL_PATHS
                if not self.options[option]]

    def is_present(self) -> bool:
        return any(os.path.exists(self.path(p))
                   for p in self.MARKERS or self.PATHS)

    def units(self) -> list[str]:
        return list(self.options.units)

    def describe(self) -> dict:
        return {'paths': [p for p in self.paths()
                          if os.path.exists(self.path(p))]}

    def backup(self, ctx: base.TaskContext) -> list[base.Artifact]:
        key = ctx.key(self.name, '.tar.zst')
        writer = ctx.storage.open_writer(key)
        with writer:
            sink = streams.HashingWriter(writer)
            stats = archive.write_archive(
                sink, self.root, self.paths(), self.excludes(),
                level=self.conf.storage.compression_level,
                threads=self.conf.storage.compression_threads,
                progress=ctx.progress)
            location = writer.commit()
        ctx.warnings.extend(stats.warnings)
        return [base.Artifact(
            name=self.name, kind='files', location=location,
            size=sink.size, sha256=sink.sha256,
            meta={'paths': stats.manifest['paths'],
                  'excludes': stats.manifest['excludes'],
                  'files': stats.files, 'bytes': stats.bytes,
                  'warnings': len(stats.warnings)}, key=key)]

"""File-set drivers: a service is its directories and units.

The service's definition (``osbackup.definitions``) names its
configuration, state and log directories, the large subtrees left out
unless asked for, and its option group; this class archives them into one
artifact per (host, service). Backups never
stop the service: archiving files needs no outage.

When the conductor names a base backup, the archive is incremental against
that backup's manifest, which the agent keeps after each backup in
``<state_path>/agent/manifests/<service>.json``. If that copy is missing or
belongs to another backup (the agent was reinstalled, the conductor did
not record the last backup), the driver takes a full backup instead: an
incremental is only ever written against a base known to both sides.
"""

import contextlib
import json
import os
import time

from oslo_log import log as logging

from osbackup import archive
from osbackup import artifact_kinds
from osbackup.definitions import base as definition_base
from osbackup.drivers import base
from osbackup import durable
from osbackup import streams

LOG = logging.getLogger(__name__)


class FileSetDriver(base.ServiceDriver):
    """Archive the paths a service definition names.

    A subclass sets ``definition``; a definition with no driver class of
    its own is served by this class directly (``FileSetDriver(conf, d)``).
    """

    definition: definition_base.ServiceDefinition | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.definition is not None:
            cls.name = cls.definition.name

    def __init__(self, conf,
                 definition: definition_base.ServiceDefinition | None = None):
        super().__init__(conf)
        if definition is not None:
            self.definition = definition
            self.name = definition.name

    @property
    def options(self):
        return self.conf[self.name]

    def paths(self) -> list[str]:
        """Absolute service paths this host's backup covers."""
        paths = list(self.definition.paths)
        if self.options.include_logs:
            paths.extend(self.definition.log_paths)
        return paths

    def excludes(self) -> list[str]:
        return list(self.definition.excludes) + [
            o.path for o in self.definition.optional_paths
            if not self.options[o.option]]

    def restorable_paths(self) -> frozenset[str]:
        return self.definition.restorable_paths()

    def is_present(self) -> bool:
        return any(os.path.exists(self.path(p))
                   for p in self.definition.present_markers())

    def units(self) -> list[str]:
        return list(self.options.units)

    def describe(self) -> dict:
        return {'paths': [p for p in self.paths()
                          if os.path.exists(self.path(p))]}

    def _manifest_path(self) -> str:
        return os.path.join(self.conf.state_path, 'agent', 'manifests',
                            '%s.json' % self.name)

    def _base(self, ctx: base.TaskContext) -> dict | None:
        """The kept manifest of the base the conductor named, if we have it."""
        wanted = ctx.params.get('base')
        if not wanted or not self.definition.incremental:
            return None
        kept = None
        with contextlib.suppress(OSError, ValueError):
            with open(self._manifest_path()) as f:
                kept = json.load(f)
        if (not isinstance(kept, dict) or
                kept.get('backup_id') != str(wanted.get('backup_id')) or
                kept.get('sha256') != wanted.get('sha256')):
            LOG.info('%s: no kept manifest of base backup %s; taking a '
                     'full backup', self.name, wanted.get('backup_id'))
            return None
        if wanted.get('location') and \
                not ctx.storage.exists(wanted['location']):
            # Chaining onto a lost base would store an unrestorable backup.
            ctx.warnings.append('base backup %s is missing from storage '
                                '(%s); took a full backup'
                                % (wanted['backup_id'], wanted['location']))
            return None
        kept['depth'] = int(wanted.get('depth', 0)) + 1
        return kept

    def _keep(self, ctx, sha256, manifest_json: bytes) -> None:
        path = self._manifest_path()
        # The manifest's JSON as the archive stores it, not encoded twice.
        head = json.dumps({'backup_id': ctx.backup_id, 'sha256': sha256})
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            durable.write_bytes(path, b'%s,"manifest":%s}' % (
                head[:-1].encode(), manifest_json))
        except OSError as exc:
            # The backup itself is fine; the next one is just full.
            ctx.warnings.append('manifest not kept for the next '
                                'incremental backup: %s' % exc)
            with contextlib.suppress(OSError):
                os.unlink(path)

    def backup(self, ctx: base.TaskContext) -> list[base.Artifact]:
        key = ctx.key(self.name, '.tar.zst')
        kept = self._base(ctx)
        writer = ctx.storage.open_writer(key)
        # Where the time goes (the bench prints it): this thread's stages
        # from the archive, the storage thread's from the sink, then the
        # commit (for local storage, its fsync).
        split = streams.Stopwatch()
        with writer:
            sink = streams.HashingWriter(writer, stopwatch=split)
            # The stream's hash and the storage writes run beside the
            # reading and compressing of the tree, not after each piece.
            with streams.WriteBehind(sink) as behind:
                stats = archive.write_archive(
                    behind, self.root, self.paths(), self.excludes(),
                    level=self.conf.storage.compression_level,
                    threads=self.conf.storage.compression_threads,
                    progress=ctx.progress,
                    base=kept and kept['manifest'],
                    base_ref=kept and kept['backup_id'])
            began = time.perf_counter()
            location = writer.commit()
            split.add('fsync', time.perf_counter() - began)
        ctx.split.update(stats.split, **split.seconds)
        ctx.warnings.extend(stats.warnings)
        if self.definition.incremental:
            self._keep(ctx, sink.sha256, stats.manifest_json)
        meta = {'paths': stats.manifest['paths'],
                'excludes': stats.manifest['excludes'],
                'files': stats.files, 'bytes': stats.bytes,
                'stored_files': stats.stored_files,
                'stored_bytes': stats.stored_bytes,
                'warnings': len(stats.warnings), 'level': 'full',
                'depth': 0}
        if self.definition.secrets:
            # For "backup check": a flagged secret this backup lacks.
            meta['secrets_missing'] = [
                {'path': s.path, 'critical': s.critical}
                for s in self.definition.secrets
                if not os.path.lexists(self.path(s.path))]
        if kept:
            meta.update(level='incremental', base=kept['backup_id'],
                        depth=kept['depth'])
        return [base.Artifact(
            name=self.name, kind=artifact_kinds.FILES, location=location,
            size=sink.size, sha256=sink.sha256, meta=meta, key=key)]

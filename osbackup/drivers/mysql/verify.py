"""Checking an artifact: read it through, or load it into a scratch schema."""

import contextlib
import os
import threading
import types

import zstandard

from osbackup.drivers import base
from osbackup.drivers.mysql import dumpfile
from osbackup.drivers.mysql import spawn
from osbackup import exception
from osbackup import streams

_NULL_SINK = types.SimpleNamespace(write=len)


class VerifyMixin:
    """Check artifacts without touching the live databases."""

    def scratch_load(self, ctx: base.TaskContext, location: str,
                     database: str, expected_sha256: str) -> dict:
        """Load a dump into a scratch schema, count it, drop the schema.

        The restore test the Operations Guide asks for: the dump really
        loads. Its CREATE DATABASE and USE statements are pointed at
        ``osbackup_verify_<n>`` on the fly; the live database is never
        touched.
        """
        self._check_artifact(ctx, location, database, expected_sha256)
        scratch = 'osbackup_verify_%d' % (os.getpid() * 1000 +
                                          threading.get_ident() % 1000)
        self._query('DROP DATABASE IF EXISTS `%s`' % scratch)
        try:
            self._load(ctx, location, database, expected_sha256,
                       lambda: dumpfile._Renamer(database, scratch), scratch)
            tables = self._query(
                "SELECT table_name FROM information_schema.tables WHERE "
                "table_schema = '%s' AND table_type = 'BASE TABLE'"
                % scratch)
            rows = 0
            for table in tables:
                rows += int(self._query('SELECT COUNT(*) FROM `%s`.`%s`' % (
                    scratch, table.replace('`', '``')))[0])
            return {'tables': len(tables), 'rows': rows}
        finally:
            self._query('DROP DATABASE IF EXISTS `%s`' % scratch)

    def verify(self, ctx: base.TaskContext, location: str, database: str,
               expected_sha256: str) -> None:
        """Check an artifact without loading it; raise ArtifactCorrupt."""
        self._check_artifact(ctx, location, database, expected_sha256)

    def _scan_artifact(self, ctx, location, expected_sha256, feed,
                       finish=lambda: None,
                       errors=(zstandard.ZstdError, exception.DumpFailed)):
        """Read a stored dump through ``feed``; the problem found, or None.

        Every byte is read and hashed, whatever ``feed`` (then ``finish``)
        makes of the text: a sha256 mismatch is the problem reported
        first; one of ``errors`` raised while reading is "not a dump".
        """
        problem = None
        with contextlib.closing(ctx.storage.open_reader(location)) as raw:
            reader = streams.HashingReader(raw)
            try:
                source = streams.decompressor(reader)
                for chunk in iter(lambda: source.read(spawn.CHUNK), b''):
                    feed(chunk)
                    ctx.progress(0, 0)      # a cancellation point
                finish()
            except errors as exc:
                problem = 'is not a dump (%s)' % exc
            reader.drain()
        if reader.sha256 != expected_sha256:
            return 'has sha256 %s, expected %s' % (reader.sha256,
                                                   expected_sha256)
        return problem

    def _check_artifact(self, ctx, location, database, expected_sha256):
        splitter = dumpfile._Splitter(lambda name: _NULL_SINK)
        problem = self._scan_artifact(ctx, location, expected_sha256,
                                      splitter.feed, splitter.finish)
        if problem is None and not splitter.completed:
            problem = 'does not end with the "-- Dump completed" trailer'
        elif problem is None and list(splitter.sinks) != [database]:
            problem = 'holds database(s) %s, expected %s' % (
                ', '.join(splitter.sinks) or 'none', database)
        if problem:
            raise exception.ArtifactCorrupt('Artifact %s %s; nothing was '
                                            'loaded' % (location, problem))

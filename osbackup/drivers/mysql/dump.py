"""mysqldump: one consistent snapshot, split into one artifact per database.

A single mysqldump run takes one snapshot (``--single-transaction``) of all
databases. Its output is split while it streams into one artifact per
database, each a complete dump (header, that database's sections, footer)
that loads on its own.
"""

import contextlib
import fcntl
import re
import select
import subprocess
import time
import types

import zstandard

from osbackup import artifact_kinds
from osbackup.drivers import base
from osbackup.drivers import galera
from osbackup.drivers.mysql import dumpfile
from osbackup.drivers.mysql import spawn
from osbackup import exception
from osbackup import streams

INTERNAL_SCHEMAS = ('information_schema', 'performance_schema', 'sys')
#: Left out of "every database": its users and grants are the accounts
#: artifact (accounts.py), which loads into other server versions.
SYSTEM_SCHEMA = 'mysql'
COALESCE_BELOW = spawn.PIPE_SIZE // 4
COALESCE_WAIT = 0.005
_BINLOG_RE = re.compile(
    rb"^-- CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_"
    rb"FILE='([^']*)',\s*(?:MASTER|SOURCE)_LOG_POS=(\d+)", re.M)
# Warnings (deprecated options, skipped tables) do not fail a dump.
_ERROR_RE = re.compile(r"error|errno|couldn't|can't", re.I)


class _FrameSwitch:
    """One zstd compressor shared by the artifacts of one dump.

    A dump's sections follow each other, so one artifact is written at a
    time: at each switch the current zstd frame is ended and the next
    bytes start a new frame of the other artifact (several frames in a
    file are plain zstd). One compression context, with its threads and
    buffers, instead of one per database keeps memory flat in the number
    of databases.
    """

    def __init__(self, level: int, threads: int):
        self._target = None
        self._writer = streams.compressor(self, level=level, threads=threads)

    def write(self, data) -> int:
        """Compressed output, for the current artifact."""
        return self._target.write(data)

    def flush(self) -> None:
        pass

    def sink(self, target):
        """A writable for the uncompressed bytes of one artifact."""
        def write(data):
            if target is not self._target:
                self.end()
                self._target = target
            return self._writer.write(data)
        return types.SimpleNamespace(write=write)

    def end(self) -> None:
        """End the current frame."""
        if self._target is not None:
            self._writer.flush(zstandard.FLUSH_FRAME)
            self._target = None


class DumpMixin:
    """Back up databases with mysqldump while they serve."""

    def _databases(self, override=None) -> list[str]:
        present = self.list_databases()
        wanted = (list(dict.fromkeys(override or self.conf.mysql.databases))
                  or
                  [db for db in present
                   if db not in INTERNAL_SCHEMAS + (SYSTEM_SCHEMA,)])
        missing = [db for db in wanted if db not in present]
        if missing:
            raise exception.DumpFailed(
                'Database(s) %s in [mysql] databases do not exist on the '
                'server' % ', '.join(missing))
        if not wanted:
            raise exception.DumpFailed('The server has no database to dump')
        return wanted

    def backup(self, ctx: base.TaskContext,
               databases: list[str] | None = None) -> list[base.Artifact]:
        """Dump all databases in one snapshot, one artifact per database.

        ``databases`` overrides ``[mysql] databases`` (a restore saves the
        databases it is about to replace this way). A backup (no
        ``databases``) adds the accounts artifact ([mysql]
        backup_accounts), taken after the databases.
        """
        # A restore's own save of what it replaces runs on any member.
        member = self.galera_state() if databases is None else None
        if member is not None:
            galera.check_usable(member, ctx.host)
        wants_accounts = databases is None and \
            self.conf.mysql.backup_accounts
        databases = self._databases(databases)
        revisions = self._revisions(ctx, databases)
        log_bin = self._query('SELECT @@log_bin')[:1] == ['1']
        writers, committed = {}, []
        try:
            artifacts = self._dump(ctx, databases, log_bin, writers,
                                   committed)
            if member is not None:
                for artifact in artifacts:
                    artifact.meta['galera'] = galera.meta(member, ctx.host)
            for artifact in artifacts:
                if revisions.get(artifact.name) is not None:
                    artifact.meta['schema_version'] = \
                        revisions[artifact.name]
            if wants_accounts:
                artifacts.append(self.backup_accounts(ctx))
                committed.append(artifacts[-1].location)
            return artifacts
        except BaseException as exc:
            for writer, _hw, _comp in writers.values():
                writer.abort()
            for location in committed:
                ctx.storage.delete(location)
            spawn._reraise(exc, exception.DumpFailed,
                           'mysqldump of %s failed' % ', '.join(databases))

    def _revisions(self, ctx, databases) -> dict:
        """The databases' alembic revisions; {} (and a warning) if unread."""
        try:
            return self.schema_revisions(databases)
        except exception.DumpFailed as exc:
            ctx.warnings.append('schema versions not recorded: %s'
                                % exc.message)
            return {}

    def _dump(self, ctx, databases, log_bin, writers, committed):
        frames = _FrameSwitch(self.conf.storage.compression_level,
                              self.conf.storage.compression_threads)

        def open_sink(name):
            writer = ctx.storage.open_writer(ctx.key(name, '.sql.zst'))
            writers[name] = (writer, None, None)
            hw = streams.HashingWriter(writer)
            writers[name] = (writer, hw, frames.sink(hw))
            return writers[name][2]

        args = ['--single-transaction', '--quick', '--routines', '--events',
                '--triggers', '--hex-blob', '--flush-privileges']
        args += ['--master-data=2'] if log_bin else []
        splitter = dumpfile._Splitter(open_sink, expected=databases)
        # Unbuffered: select() then sees all there is, and a read returns
        # what is available instead of waiting for a full chunk.
        proc = self._spawn(self.conf.mysql.mysqldump_path,
                           args + ['--databases'] + databases, bufsize=0,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        stderr = spawn._Stderr(proc.stderr)
        with contextlib.suppress(OSError):
            # Fewer, larger reads: a 64 KiB pipe means a wakeup, a read
            # and a split call per 64 KiB.
            fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ,
                        spawn.PIPE_SIZE)
        eof = False
        try:
            while not eof:
                if not select.select([proc.stdout], [], [],
                                     spawn.IDLE_POLL)[0]:
                    # A stalled dump (a lock wait) can still be cancelled.
                    ctx.progress(0, 0)
                    continue
                chunk = proc.stdout.read(spawn.CHUNK)
                splitter.feed(chunk)
                ctx.progress(len(chunk), 0)
                eof = not chunk
                if 0 < len(chunk) < COALESCE_BELOW:
                    # Let the big pipe fill a little: fewer, larger reads
                    # leave the CPU to the server and mysqldump.
                    time.sleep(COALESCE_WAIT)
            splitter.finish()
        finally:
            if not eof:
                proc.kill()     # it may be blocked writing to us
            proc.stdout.close()
            returncode = proc.wait()
            stderr.join()

        problems = []
        if returncode != 0:
            problems.append('it exited with status %d' % returncode)
        if any(_ERROR_RE.search(line) and 'warning' not in line.lower()
               for line in stderr.text.splitlines()):
            problems.append('it reported an error')
        if not splitter.completed:
            problems.append('its output ends without the "-- Dump '
                            'completed" trailer')
        missing = [db for db in databases if db not in splitter.sinks]
        if missing:
            problems.append('it wrote nothing for %s' % ', '.join(missing))
        if problems:
            raise exception.DumpFailed('mysqldump of %s failed: %s%s' % (
                ', '.join(databases), '; '.join(problems),
                (': ' + stderr.text[:spawn.STDERR_SHOWN]) if stderr.text
                else ''))
        if stderr.text:
            ctx.warnings.append('mysqldump: ' +
                                stderr.text[:spawn.STDERR_SHOWN])

        position = _BINLOG_RE.search(splitter.header)
        if log_bin and not position:
            ctx.warnings.append('The binary log is on but the dump records '
                                'no binlog position')
        frames.end()
        artifacts = []
        for db in databases:
            writer, hw, _comp = writers[db]
            committed.append(writer.commit())
            binlog = position and {'file': position.group(1).decode(),
                                   'position': int(position.group(2)),
                                   'gtid': splitter.gtid}
            artifacts.append(base.Artifact(
                name=db, kind=artifact_kinds.SQL, location=committed[-1],
                size=hw.size,
                sha256=hw.sha256, key=ctx.key(db, '.sql.zst'),
                meta={'database': db, 'binlog': binlog or None,
                      'uncompressed_size': splitter.sizes[db]}))
        return artifacts

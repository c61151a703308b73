"""Ship MariaDB binary logs to the backup targets (point-in-time recovery).

Each archive task (the ``binlog`` service, scheduled by the conductor every
``[mysql] binlog_archive_interval`` seconds, osbackup/conductor/binlogs.py)
ships the bytes the server wrote since the end of the last archived
segment, which the conductor reads from the catalogue and sends as
``binlog_from``: the rest of every file the server rotated since, and the
open file up to the size ``SHOW BINARY LOGS`` reports. One artifact of kind
``binlog`` per (file, byte range); its offsets are the server's own binlog
positions, so a restore reassembles the files byte for byte and replays
them with ``mariadb-binlog --start-position`` from the base backup's
recorded position.

Why files read from the data directory rather than a replication client
(``mariadb-binlog --read-from-remote-server --raw --stop-never``): a
long-lived client holds its progress in a process and a local file, which
an agent restart or a crash loses or leaves half-written, and a raw
remote copy's offsets differ from the server's once a file is resumed.
Here the catalogue holds the chain (every range is an artifact with its
records, so ``catalogue rebuild`` brings binlogs back), an agent restart
loses nothing (the next task starts from the catalogue's end position),
only whole events up to the server's reported size are read, and a gap is
seen by comparing the catalogue's position with what the server still
lists.

A gap is never papered over: when the file to continue was purged before it
was shipped, or the server's logs start again (RESET MASTER, a new data
directory, a log shorter than what was shipped of it), the first segment
after it says so in its ``gap`` meta and the task warns. A server restart
alone is no gap: the old file is closed on disk and its tail is shipped
with the next task, and the numbering continues.
"""

import datetime
import os
import shutil
import struct
import subprocess
import tempfile

from oslo_log import log as logging

from osbackup import artifact_kinds
from osbackup import binlog_chain
from osbackup.definitions import binlog as binlog_definition
from osbackup.drivers import base
from osbackup.drivers import mysql
from osbackup.drivers.mysql import spawn
from osbackup import exception
from osbackup import streams

LOG = logging.getLogger(__name__)

MAGIC = b'\xfebin'
HEADER = struct.Struct('<IBIIIH')
GTID_EVENT = 162
GTID_BODY = struct.Struct('<QI')
CHUNK = streams.CHUNK
#: Seconds one database's replay may take.
REPLAY_TIMEOUT = 6 * 3600
#: Where the first event's flags are, and the flag of a file being written.
FLAGS_AT = 4 + 17
IN_USE = 0x1


def iso(timestamp: int | None) -> str | None:
    if not timestamp:
        return None
    return datetime.datetime.fromtimestamp(
        timestamp, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def scan(fileobj, begin: int, end: int) -> dict:
    """Walk the whole events between ``begin`` and ``end`` of a binlog.

    Returns the range's facts: ``end_pos`` (the last whole event's end,
    never past ``end``), first and last event time, first and last GTID.
    """
    fileobj.seek(0)
    if fileobj.read(4) != MAGIC:
        raise exception.DumpFailed('Not a binary log (no magic number)')
    pos = max(begin, 4)
    facts = {'start_time': None, 'end_time': None, 'gtid_start': None,
             'gtid_end': None, 'events': 0}
    while pos + HEADER.size <= end:
        fileobj.seek(pos)
        head = fileobj.read(HEADER.size)
        if len(head) < HEADER.size:
            break
        when, kind, server_id, size, _next, _flags = HEADER.unpack(head)
        if size < HEADER.size or pos + size > end:
            break
        if when:
            facts['start_time'] = facts['start_time'] or when
            facts['end_time'] = max(facts['end_time'] or 0, when)
        if kind == GTID_EVENT:
            seq_no, domain = GTID_BODY.unpack(fileobj.read(GTID_BODY.size))
            gtid = '%d-%d-%d' % (domain, server_id, seq_no)
            facts['gtid_start'] = facts['gtid_start'] or gtid
            facts['gtid_end'] = gtid
        facts['events'] += 1
        pos += size
    facts['end_pos'] = pos if facts['events'] else begin
    return facts


def closed_copy(data: bytes) -> bytes:
    """A binlog file's bytes with the in-use flag of its header cleared.

    The server sets the flag in the format description event while it
    writes a file and clears it when it closes it; a segment shipped while
    the file was open keeps it. A reassembled file is a closed one.
    """
    if len(data) < FLAGS_AT + 2 or data[:4] != MAGIC:
        return data
    flags, = struct.unpack_from('<H', data, FLAGS_AT)
    return (data[:FLAGS_AT] + struct.pack('<H', flags & ~IN_USE) +
            data[FLAGS_AT + 2:])


def clear_in_use(path: str) -> None:
    """Clear the in-use flag of a reassembled binlog file in place."""
    with open(path, 'r+b') as f:
        head = f.read(FLAGS_AT + 2)
        f.seek(0)
        f.write(closed_copy(head))


def plan(logs: list, start: dict | None) -> tuple[list, str | None]:
    """The (file, begin, end, closed) ranges to ship, and a gap if any.

    ``logs`` is SHOW BINARY LOGS as (name, size); ``start`` the end of the
    last archived segment ({'file', 'position'}) or None (first run).
    """
    if not logs:
        return [], None
    names = [name for name, _size in logs]
    first, gap = 0, None
    begin = 0
    if start:
        if start['file'] in names:
            first = names.index(start['file'])
            if logs[first][1] < start['position']:
                gap = ('binlog %s is shorter (%d bytes) than what was '
                       'archived of it (%d): the server wrote a new log '
                       'under the same name' % (start['file'], logs[first][1],
                                                start['position']))
            else:
                begin = start['position']
        elif (binlog_chain.sequence(names[0]) >
              binlog_chain.sequence(start['file'])):
            gap = ('binlog(s) from %s position %d to %s were purged before '
                   'they were archived' % (start['file'], start['position'],
                                           names[0]))
        else:
            gap = ('the server\'s binary logs start again at %s after %s '
                   '(RESET MASTER or a new server)' % (names[0],
                                                       start['file']))
    ranges = []
    for index in range(first, len(logs)):
        name, size = logs[index]
        lo = begin if index == first else 0
        if size > lo:
            ranges.append((name, lo, size, index < len(logs) - 1))
    return ranges, gap


class BinlogDriver(mysql.MySQLDriver):
    """Archives the local server's binary logs, range by range."""

    name = binlog_definition.NAME

    def is_present(self) -> bool:
        """Archiving is on, and so is the server's binary log."""
        if not self.conf.mysql.binlog_archive_interval:
            return False
        if not super().is_present():
            return False
        try:
            return self._query('SELECT @@log_bin')[:1] == ['1']
        except exception.OsbackupError:
            return False

    def describe(self) -> dict:
        """The heartbeat's ``binlog``: the interval, log_slave_updates."""
        out = {'interval': self.conf.mysql.binlog_archive_interval}
        try:
            out['log_slave_updates'] = self._query(
                'SELECT @@log_slave_updates')[:1] == ['1']
        except exception.OsbackupError:
            pass
        return out

    def membership(self) -> dict:
        # The mysql driver reports the node's cluster facts.
        return {}

    def binary_logs(self) -> list[tuple[str, int]]:
        """SHOW BINARY LOGS: (file, size) in order."""
        out = []
        for line in self._query('SHOW BINARY LOGS'):
            fields = line.split('\t')
            out.append((fields[0], int(fields[1])))
        return out

    def log_dir(self) -> str:
        """Where the server writes its binary logs (as it says)."""
        basename, datadir = self._query(
            'SELECT @@log_bin_basename, @@datadir')[0].split('\t')
        return os.path.dirname(os.path.join(datadir, basename))

    def backup(self, ctx: base.TaskContext) -> list[base.Artifact]:
        """Ship every byte written since ``binlog_from``, one per file."""
        logs = self.binary_logs()
        directory = self.log_dir()
        ranges, gap = plan(logs, ctx.params.get('binlog_from'))
        if gap:
            LOG.warning('Binlog archive of %s: break in the chain: %s',
                        ctx.host, gap)
            ctx.warnings.append('Break in the binlog chain: %s' % gap)
        server_id = self._query('SELECT @@server_id')[0]
        artifacts = []
        try:
            for name, begin, end, closed in ranges:
                artifact = self._ship(ctx, os.path.join(directory, name),
                                      name, begin, end, closed)
                if artifact is None:
                    continue
                artifact.meta['server_id'] = int(server_id)
                artifact.meta['gap'] = gap if not artifacts else None
                artifacts.append(artifact)
        except BaseException as exc:
            for artifact in artifacts:
                ctx.storage.delete(artifact.location)
            spawn._reraise(exc, exception.DumpFailed,
                           'Binlog archive of %s failed' % ctx.host)
        if gap and not artifacts:
            raise exception.DumpFailed('Break in the binlog chain and '
                                       'nothing to archive after it: %s'
                                       % gap)
        return artifacts

    def _ship(self, ctx, path, name, begin, end, closed):
        with open(path, 'rb') as src:
            facts = scan(src, begin, end)
            stop = facts.pop('end_pos')
            if stop <= begin:
                return None
            key = ctx.key('%s-%d' % (name, begin), '.binlog.zst')
            writer = ctx.storage.open_writer(key)
            try:
                hashing = streams.HashingWriter(writer)
                comp = streams.compressor(
                    hashing, self.conf.storage.compression_level,
                    self.conf.storage.compression_threads)
                src.seek(begin)
                left = stop - begin
                while left:
                    chunk = src.read(min(CHUNK, left))
                    if not chunk:
                        raise exception.DumpFailed(
                            'binlog %s ended at %d, before %d'
                            % (name, stop - left, stop))
                    comp.write(chunk)
                    ctx.progress(len(chunk), 0)
                    left -= len(chunk)
                comp.close()
                location = writer.commit()
            except BaseException:
                writer.abort()
                raise
        return base.Artifact(
            name='%s-%d' % (name, begin), kind=artifact_kinds.BINLOG,
            location=location, size=hashing.size, sha256=hashing.sha256,
            key=key,
            meta={'file': name, 'start_pos': begin, 'end_pos': stop,
                  'closed': closed and stop == end,
                  'start_time': iso(facts['start_time']),
                  'end_time': iso(facts['end_time']),
                  'gtid_start': facts['gtid_start'],
                  'gtid_end': facts['gtid_end'],
                  'events': facts['events'],
                  'uncompressed_size': stop - begin})

    # -- point-in-time replay ------------------------------------------

    def reassemble(self, ctx, segments: list, directory: str) -> list[str]:
        """Put the binlog files back together from their segments.

        Each segment's sha256 is checked; a file must be whole from its
        start, each segment starting where the one before it ended.
        """
        paths = []
        for seg in segments:
            meta = seg['meta']
            path = os.path.join(directory, os.path.basename(meta['file']))
            if not paths or paths[-1] != path:
                paths.append(path)
            have = os.path.getsize(path) if os.path.exists(path) else 0
            if have != meta['start_pos']:
                raise exception.RestoreFailed(
                    'Binlog %s: segment %s starts at %d, the archive holds '
                    'it up to %d' % (meta['file'], seg['name'],
                                     meta['start_pos'], have))
            with open(path, 'ab') as out:
                # Checked within this iteration: the closure's ``seg`` is
                # this segment.
                streams.write_checked(
                    out, ctx.storage.open_reader(seg['location']),
                    seg['sha256'],
                    lambda actual: exception.ArtifactCorrupt(
                        'Binlog segment %s has sha256 %s, expected %s; '
                        'nothing was replayed' % (seg['location'], actual,
                                                  seg['sha256'])),
                    ctx.progress)
        for path in paths:
            clear_in_use(path)
        return paths

    def replay(self, ctx, spec: dict) -> None:
        """Replay the archived binlogs of ``spec`` into the server.

        From the base backup's position up to ``stop_datetime`` (UTC) or
        ``stop_gtid``, one pass per database, each filtered to it.
        """
        scratch = os.path.join(self.conf.state_path, 'agent', 'scratch')
        os.makedirs(scratch, mode=0o700, exist_ok=True)
        directory = tempfile.mkdtemp(prefix='binlog-replay-', dir=scratch)
        try:
            paths = self.reassemble(ctx, spec['segments'], directory)
            for database in spec['databases']:
                self._replay_one(paths, spec, database, directory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _replay_args(self, spec, database):
        start = spec['start']
        if spec.get('stop_gtid'):
            if not start.get('gtid'):
                raise exception.RestoreFailed(
                    'The base backup records no GTID position: restore to '
                    'a time instead')
            args = ['--start-position=%s' % start['gtid'],
                    '--stop-position=%s' % spec['stop_gtid']]
        else:
            args = ['--start-position=%d' % start['position'],
                    '--stop-datetime=%s' % spec['stop_datetime']]
        return args + ['--database=%s' % database]

    def _replay_one(self, paths, spec, database, directory):
        errors = os.path.join(directory, 'mariadb-binlog.err')
        with open(errors, 'wb') as err:
            # mariadb-binlog reads --stop-datetime in its local time zone:
            # the spec's times are UTC.
            reader = subprocess.Popen(
                [self.conf.mysql.mysqlbinlog_path] +
                self._replay_args(spec, database) + paths,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                env=dict(os.environ, TZ='UTC'))
        try:
            client = self._spawn(self.conf.mysql.mysql_path,
                                 ['--binary-mode'], stdin=reader.stdout,
                                 stdout=subprocess.DEVNULL)
        except BaseException:
            reader.kill()
            reader.wait()
            raise
        finally:
            reader.stdout.close()
        try:
            _out, client_err = client.communicate(timeout=REPLAY_TIMEOUT)
            reader.wait(timeout=REPLAY_TIMEOUT)
        except subprocess.TimeoutExpired:
            client.kill()
            reader.kill()
            client.communicate()
            reader.wait()
            raise exception.RestoreFailed(
                'Replaying the binlogs into %s took more than %d s'
                % (database, REPLAY_TIMEOUT))
        with open(errors, 'rb') as f:
            reader_err = f.read(spawn.STDERR_SHOWN).decode('utf-8', 'replace')
        problems = []
        if reader.returncode != 0:
            problems.append('mariadb-binlog exited %d: %s' % (
                reader.returncode, reader_err.strip()))
        if client.returncode != 0:
            problems.append('the mysql client exited %d: %s' % (
                client.returncode, client_err.decode(
                    'utf-8', 'replace').strip()[:spawn.STDERR_SHOWN]))
        if problems:
            raise exception.RestoreFailed('Replaying the binlogs into %s '
                                          'failed: %s' % (database,
                                                          '; '.join(problems)))

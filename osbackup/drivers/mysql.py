"""The mysql driver: one consistent mysqldump of the control plane databases.

A single mysqldump run takes one snapshot (``--single-transaction``) of all
databases. Its output is split while it streams into one artifact per
database, each a complete dump (header, that database's sections, footer)
that loads on its own. Credentials reach the clients through an option file
on a pipe, never through argv or the environment, which other local users
can read.
"""

import contextlib
import os
import re
import select
import shutil
import subprocess
import threading
import types

import psutil
import zstandard

from osbackup.drivers import base
from osbackup import exception
from osbackup import streams

LOCAL_HOSTS = ('localhost', '127.0.0.1', '::1')
SERVER_PROCESSES = ('mysqld', 'mariadbd')
INTERNAL_SCHEMAS = ('information_schema', 'performance_schema', 'sys')
# The system database of an installed server: a stopped server on a
# controller must fail its backup, not be skipped as absent.
DATADIR_MARKER = '/var/lib/mysql/mysql'
QUERY_TIMEOUT = 120
IDLE_POLL = 1.0
CHUNK = streams.CHUNK
# Marker and footer lines are short; longer lines are data, passed on in
# pieces instead of being held whole.
MAX_LINE = 64 * 1024
MAX_HEADER = 16 * 1024 * 1024
STDERR_KEPT = 64 * 1024
STDERR_SHOWN = 500
TRAILER = b'-- Dump completed'

# Lines worth a closer look (comments and conditional statements; rows
# never start so); the rest is copied unexamined. A literal first char
# lets re skip ahead fast, where a multi-line ^ would try every byte.
_CANDIDATE_RE = re.compile(rb'\n(?:-- |/\*!)')
_CANDIDATE_STARTS = (b'-- ', b'/*!')
_MARKER_RE = re.compile(rb'-- Current Database: `((?:[^`]|``)+)`\r?\n?\Z')
_FOOTER_RE = re.compile(rb'(?:/\*!\d+ SET \w+=@OLD_\w+(?:, \w+=@OLD_\w+)* '
                        rb'\*/;|-- Dump completed[^\n]*)\r?\n?\Z')
_BINLOG_RE = re.compile(
    rb"^-- CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_"
    rb"FILE='([^']*)',\s*(?:MASTER|SOURCE)_LOG_POS=(\d+)", re.M)
# MariaDB 10.11 prints it at the end of the last section, not the header.
_GTID_RE = re.compile(rb"-- SET GLOBAL gtid_slave_pos='([^']*)'")
# Warnings (deprecated options, skipped tables) do not fail a dump.
_ERROR_RE = re.compile(r"error|errno|couldn't|can't", re.I)
_NULL_SINK = types.SimpleNamespace(write=len)
_ESCAPES = str.maketrans({'\\': '\\\\', '"': '\\"', '\n': '\\n',
                          '\r': '\\r'})


def _quote(value) -> str:
    """Quote an option file value with the escapes MySQL's parser reads."""
    return '"%s"' % str(value).translate(_ESCAPES)


def _error_lines(text: str) -> str:
    """The client's ERROR lines, without the statement it may echo.

    On a failed load the client can print the failing statement, which
    holds table data; only its error lines go into reports.
    """
    errors = [line[:300] for line in text.splitlines()
              if line.startswith('ERROR')]
    return '; '.join(errors) if errors else '(no error message)'


def _reraise(exc, error, message):
    """Keep the code of our own errors (and cancellations); wrap others."""
    if isinstance(exc, exception.OsbackupError) or not isinstance(
            exc, Exception):
        raise exc
    raise error('%s: %s' % (message, exc)) from exc


class _Renamer:
    """Point a one-database dump's CREATE DATABASE and USE at another name.

    Works on a stream: the statements are short and start a line, so a
    tail of the previous chunk is held back in case one is cut in two.
    """

    HOLD = 512

    def __init__(self, old: str, new: str):
        old_q = ('`%s`' % old.replace('`', '``')).encode()
        new_q = ('`%s`' % new).encode()
        self._subs = [
            (b'\nUSE ' + old_q + b';', b'\nUSE ' + new_q + b';'),
            (b'IF NOT EXISTS*/ ' + old_q, b'IF NOT EXISTS*/ ' + new_q),
            (b'\nCREATE DATABASE ' + old_q, b'\nCREATE DATABASE ' + new_q)]
        self._held = b'\n'

    def __call__(self, chunk: bytes, final: bool = False) -> bytes:
        data = self._held + chunk
        for old, new in self._subs:
            data = data.replace(old, new)
        if final:
            self._held = b''
            return data
        self._held = data[-self.HOLD:]
        return data[:-self.HOLD]


class _Stderr(threading.Thread):
    """Drain a child's stderr so it can never block; keep its beginning."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self._pipe = pipe
        self._buf = bytearray()
        self.start()

    def run(self):
        with self._pipe:
            for data in iter(lambda: self._pipe.read(4096), b''):
                self._buf += data[:max(0, STDERR_KEPT - len(self._buf))]

    @property
    def text(self) -> str:
        return self._buf.decode('utf-8', 'replace').strip()


class _Splitter:
    """Route a mysqldump stream into one sink per database.

    The header (before the first ``-- Current Database`` marker) and the
    footer (the restore-settings lines and trailer after the last section)
    are small and held; section bytes go straight to their database's sink.
    A database may have several sections (views come in a second pass).
    """

    def __init__(self, open_sink, expected=None):
        self._open_sink = open_sink
        self._expected = expected
        self.header = bytearray()
        self.footer = bytearray()
        self.sinks = {}
        self.sizes = {}
        self.completed = False
        self.gtid = None
        self._current = None
        self._in_footer = False
        self._tail = b''
        self._midline = False

    def feed(self, chunk: bytes) -> None:
        data = self._tail + chunk
        cut = data.rfind(b'\n') + 1
        if len(data) - cut > MAX_LINE:
            cut = len(data)
        self._tail = data[cut:]
        self._route(data[:cut])

    def finish(self) -> None:
        """Route the last bytes and append the footer to every sink."""
        self._route(self._tail)
        self._tail = b''
        for name in self.sinks:
            self._write(name, bytes(self.footer))

    def _route(self, body):
        if not body:
            return
        pos = 0
        if self._midline:
            pos = body.find(b'\n') + 1 or len(body)
            self._data(body[:pos])
        first = [pos] if body.startswith(_CANDIDATE_STARTS, pos) else []
        for start in first + [match.start() + 1 for match in
                              _CANDIDATE_RE.finditer(body, pos)]:
            self._data(body[pos:start])
            pos = body.find(b'\n', start) + 1 or len(body)
            self._line(body[start:pos])
        self._data(body[pos:])
        self._midline = not body.endswith(b'\n')

    def _line(self, line):
        marker = _MARKER_RE.match(line)
        if marker:
            self._section(marker.group(1).replace(b'``', b'`').decode(
                'utf-8', 'surrogateescape'))
        elif self._current is not None and _FOOTER_RE.match(line):
            self._in_footer = True
            self.footer += line
            self.completed = line.startswith(TRAILER)
            return
        elif gtid := _GTID_RE.match(line):
            self.gtid = gtid.group(1).decode()
        self._data(line)

    def _section(self, name):
        self._unfooter()
        if name not in self.sinks:
            if self._expected is not None and name not in self._expected:
                raise exception.DumpFailed(
                    'mysqldump wrote database %s, which was not asked for'
                    % name)
            self.sinks[name] = self._open_sink(name)
            self.sizes[name] = 0
            self._write(name, bytes(self.header))
        self._current = name

    def _unfooter(self):
        # More dump followed what looked like the footer: it was part of
        # the current section after all.
        if self._in_footer:
            pending = bytes(self.footer)
            self.footer.clear()
            self._in_footer = self.completed = False
            self._write(self._current, pending)

    def _data(self, data):
        if not data:
            return
        if self._current is None:
            self.header += data
            if len(self.header) > MAX_HEADER:
                raise exception.DumpFailed(
                    'mysqldump output has no "-- Current Database" section')
            return
        if self._in_footer:
            if not data.strip():
                self.footer += data
                return
            self._unfooter()
        self._write(self._current, data)

    def _write(self, name, data):
        self.sinks[name].write(data)
        self.sizes[name] += len(data)


class MySQLDriver(base.ServiceDriver):
    """MySQL/MariaDB databases, dumped with mysqldump while they serve."""

    name = 'mysql'

    def is_present(self) -> bool:
        """Whether mysqldump exists and there is a server to dump."""
        opts = self.conf.mysql
        if not shutil.which(opts.mysqldump_path):
            return False
        if (opts.socket or opts.host not in LOCAL_HOSTS or
                os.path.isdir(self.path(DATADIR_MARKER))):
            return True
        return any(proc.info['name'] in SERVER_PROCESSES
                   for proc in psutil.process_iter(['name']))

    def units(self) -> list[str]:
        """None: a dump can only be loaded into a running server."""
        return []

    def describe(self) -> dict:
        """The server's databases but internal schemas, or {} if it fails."""
        try:
            return {'databases': [db for db in self.list_databases()
                                  if db not in INTERNAL_SCHEMAS]}
        except Exception:
            return {}

    def list_databases(self) -> list[str]:
        """Names of every database on the server."""
        return self._query('SHOW DATABASES')

    # -- clients -------------------------------------------------------

    def _option_file(self) -> bytes:
        opts = self.conf.mysql
        # [mysql] socket overrides host and port; clients use the socket
        # only for the host "localhost".
        items = [('user', opts.user), ('password', opts.password or ''),
                 ('host', 'localhost' if opts.socket else opts.host),
                 ('port', opts.port)]
        if opts.socket:
            items.append(('socket', opts.socket))
        return ('[client]\n' + ''.join('%s=%s\n' % (key, _quote(value))
                                       for key, value in items)).encode()

    def _spawn(self, executable: str, args: list[str],
               **popen_args) -> subprocess.Popen:
        """Start a client that reads its credentials from a pipe."""
        read_fd, write_fd = os.pipe()
        try:
            try:
                # A few hundred bytes fit the pipe buffer: this never blocks.
                os.write(write_fd, self._option_file())
            finally:
                os.close(write_fd)
            return subprocess.Popen(
                [executable, '--defaults-extra-file=/dev/fd/%d' % read_fd]
                + args, pass_fds=(read_fd,), stderr=subprocess.PIPE,
                **popen_args)
        finally:
            os.close(read_fd)

    def _query(self, sql: str) -> list[str]:
        proc = None
        try:
            proc = self._spawn(self.conf.mysql.mysql_path,
                               ['--batch', '--skip-column-names', '-e', sql],
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE)
            out, err = proc.communicate(timeout=QUERY_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            if proc is not None:
                proc.kill()
                proc.communicate()
            raise exception.DumpFailed('"%s" failed: %s' % (sql, exc))
        if proc.returncode != 0:
            raise exception.DumpFailed('"%s" failed: %s' % (
                sql, err.decode('utf-8', 'replace').strip()[:STDERR_SHOWN]))
        return out.decode('utf-8', 'surrogateescape').splitlines()

    # -- backup --------------------------------------------------------

    def _databases(self, override=None) -> list[str]:
        present = self.list_databases()
        wanted = (list(dict.fromkeys(override or self.conf.mysql.databases))
                  or
                  [db for db in present if db not in INTERNAL_SCHEMAS])
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
        databases it is about to replace this way).
        """
        databases = self._databases(databases)
        log_bin = self._query('SELECT @@log_bin')[:1] == ['1']
        writers, committed = {}, []
        try:
            return self._dump(ctx, databases, log_bin, writers, committed)
        except BaseException as exc:
            for writer, _hw, _comp in writers.values():
                writer.abort()
            for location in committed:
                ctx.storage.delete(location)
            _reraise(exc, exception.DumpFailed,
                     'mysqldump of %s failed' % ', '.join(databases))

    def _dump(self, ctx, databases, log_bin, writers, committed):
        def open_sink(name):
            writer = ctx.storage.open_writer(ctx.key(name, '.sql.zst'))
            writers[name] = (writer, None, None)
            hw = streams.HashingWriter(writer)
            writers[name] = (writer, hw, streams.compressor(
                hw, level=self.conf.storage.compression_level,
                threads=self.conf.storage.compression_threads))
            return writers[name][2]

        args = ['--single-transaction', '--quick', '--routines', '--events',
                '--triggers', '--hex-blob', '--flush-privileges']
        args += ['--master-data=2'] if log_bin else []
        splitter = _Splitter(open_sink, expected=databases)
        # Unbuffered: select() then sees all there is, and a read returns
        # what is available instead of waiting for a full chunk.
        proc = self._spawn(self.conf.mysql.mysqldump_path,
                           args + ['--databases'] + databases, bufsize=0,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        stderr = _Stderr(proc.stderr)
        eof = False
        try:
            while not eof:
                if not select.select([proc.stdout], [], [], IDLE_POLL)[0]:
                    # A stalled dump (a lock wait) can still be cancelled.
                    ctx.progress(0, 0)
                    continue
                chunk = proc.stdout.read(CHUNK)
                splitter.feed(chunk)
                ctx.progress(len(chunk), 0)
                eof = not chunk
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
                (': ' + stderr.text[:STDERR_SHOWN]) if stderr.text else ''))
        if stderr.text:
            ctx.warnings.append('mysqldump: ' + stderr.text[:STDERR_SHOWN])

        position = _BINLOG_RE.search(splitter.header)
        if log_bin and not position:
            ctx.warnings.append('The binary log is on but the dump records '
                                'no binlog position')
        for _writer, _hw, comp in writers.values():
            comp.close()
        artifacts = []
        for db in databases:
            writer, hw, _comp = writers[db]
            committed.append(writer.commit())
            binlog = position and {'file': position.group(1).decode(),
                                   'position': int(position.group(2)),
                                   'gtid': splitter.gtid}
            artifacts.append(base.Artifact(
                name=db, kind='sql', location=committed[-1], size=hw.size,
                sha256=hw.sha256, key=ctx.key(db, '.sql.zst'),
                meta={'database': db, 'binlog': binlog or None,
                      'uncompressed_size': splitter.sizes[db]}))
        return artifacts

    # -- restore -------------------------------------------------------

    def load(self, ctx: base.TaskContext, location: str, database: str,
             expected_sha256: str) -> None:
        """Load one database's artifact into the server, checked first.

        The artifact is read twice: first to check its sha256, that it
        decompresses, holds ``database`` only and ends with mysqldump's
        trailer, so a bad artifact is refused before the server is touched;
        then to feed it to the mysql client.
        """
        self._check_artifact(ctx, location, database, expected_sha256)
        self._load_stream(ctx, location, database, None)

    def _load_stream(self, ctx, location, database, rewrite):
        try:
            proc = self._spawn(self.conf.mysql.mysql_path, [],
                               stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL)
        except OSError as exc:
            raise exception.RestoreFailed('Cannot run %s: %s'
                                          % (self.conf.mysql.mysql_path, exc))
        stderr = _Stderr(proc.stderr)
        try:
            with contextlib.closing(ctx.storage.open_reader(location)) as raw:
                source = streams.decompressor(raw)
                for chunk in iter(lambda: source.read(CHUNK), b''):
                    if rewrite is not None:
                        chunk = rewrite(chunk)
                    proc.stdin.write(chunk)
                    ctx.progress(len(chunk), 0)
                if rewrite is not None:
                    proc.stdin.write(rewrite(b'', final=True))
            proc.stdin.close()
        except BrokenPipeError:
            pass    # the client quit early; its status and stderr say why
        except BaseException as exc:
            proc.kill()
            _reraise(exc, exception.RestoreFailed,
                     'Loading database %s failed' % database)
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            returncode = proc.wait()
            stderr.join()
        if returncode != 0:
            raise exception.RestoreFailed(
                'Loading database %s failed: mysql exited with status %d: %s'
                % (database, returncode, _error_lines(stderr.text)))

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
            self._load_stream(ctx, location, database,
                              _Renamer(database, scratch))
            tables = self._query(
                "SELECT table_name FROM information_schema.tables WHERE "
                "table_schema = '%s' AND table_type = 'BASE TABLE'"
                % scratch)
            rows = 0
            for table in tables:
                rows += int(self._query('SELECT COUNT(*) FROM `%s`.`%s`'
                                        % (scratch, table))[0])
            return {'tables': len(tables), 'rows': rows}
        finally:
            self._query('DROP DATABASE IF EXISTS `%s`' % scratch)

    def verify(self, ctx: base.TaskContext, location: str, database: str,
               expected_sha256: str) -> None:
        """Check an artifact without loading it; raise ArtifactCorrupt."""
        self._check_artifact(ctx, location, database, expected_sha256)

    def _check_artifact(self, ctx, location, database, expected_sha256):
        problem = None
        splitter = _Splitter(lambda name: _NULL_SINK)
        with contextlib.closing(ctx.storage.open_reader(location)) as raw:
            reader = streams.HashingReader(raw)
            try:
                source = streams.decompressor(reader)
                for chunk in iter(lambda: source.read(CHUNK), b''):
                    splitter.feed(chunk)
                    ctx.progress(0, 0)      # a cancellation point
                splitter.finish()
            except (zstandard.ZstdError, exception.DumpFailed) as exc:
                problem = 'is not a dump (%s)' % exc
            reader.drain()
        if reader.sha256 != expected_sha256:
            problem = 'has sha256 %s, expected %s' % (reader.sha256,
                                                      expected_sha256)
        elif problem is None and not splitter.completed:
            problem = 'does not end with the "-- Dump completed" trailer'
        elif problem is None and list(splitter.sinks) != [database]:
            problem = 'holds database(s) %s, expected %s' % (
                ', '.join(splitter.sinks) or 'none', database)
        if problem:
            raise exception.ArtifactCorrupt('Artifact %s %s; nothing was '
                                            'loaded' % (location, problem))

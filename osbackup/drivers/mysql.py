"""The mysql driver: one consistent mysqldump of the control plane databases.

A single mysqldump run takes one snapshot (``--single-transaction``) of all
databases. Its output is split while it streams into one artifact per
database, each a complete dump (header, that database's sections, footer)
that loads on its own. A restore loads one database's dump with several
mysql clients, one table per client at a time (see _ParallelLoad).
Credentials reach the clients through an option file on a pipe, never
through argv or the environment, which other local users can read.
"""

import contextlib
import fcntl
import functools
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
import types

from oslo_log import log as logging
import psutil
import zstandard

from osbackup import artifact_kinds
from osbackup.drivers import base
from osbackup.drivers import galera
from osbackup import exception
from osbackup import streams

LOG = logging.getLogger(__name__)

# Server errors after which a parallel load is worth one serial retry:
# lock wait timeout and deadlock.
_TRANSIENT_RE = re.compile(r'\bERROR (?:1205|1213) \(')

LOCAL_HOSTS = ('localhost', '127.0.0.1', '::1')
SERVER_PROCESSES = ('mysqld', 'mariadbd')
INTERNAL_SCHEMAS = ('information_schema', 'performance_schema', 'sys')
# The system database of an installed server: a stopped server on a
# controller must fail its backup, not be skipped as absent.
DATADIR_MARKER = '/var/lib/mysql/mysql'
QUERY_TIMEOUT = 120
IDLE_POLL = 1.0
CHUNK = streams.CHUNK
PIPE_SIZE = 1 << 20
COALESCE_BELOW = PIPE_SIZE // 4
COALESCE_WAIT = 0.005
# restore_parallelism 0: this many clients at most (see conf/mysql.py).
AUTO_PARALLELISM = 4
# Views, routines and events wait in memory up to this, then on disk.
TAIL_IN_MEMORY = 8 << 20
# Marker and footer lines are short; longer lines are data, passed on in
# pieces instead of being held whole.
MAX_LINE = 64 * 1024
MAX_HEADER = 16 * 1024 * 1024
STDERR_KEPT = 64 * 1024
STDERR_TAIL = 4096
STDERR_SHOWN = 500
TRAILER = b'-- Dump completed'

# Lines worth a closer look (comments and conditional statements; rows
# never start so); the rest is passed on unexamined.
_CANDIDATE_STARTS = (b'-- ', b'/*!')
_MARKER_RE = re.compile(rb'-- Current Database: `((?:[^`]|``)+)`\r?\n?\Z')
_FOOTER_RE = re.compile(rb'(?:/\*!\d+ SET \w+=@OLD_\w+(?:, \w+=@OLD_\w+)* '
                        rb'\*/;|-- Dump completed[^\n]*)\r?\n?\Z')
# Titles of the blocks of a dump (restore side): tables load in parallel,
# the other blocks serially.
_TABLE_TITLE_RE = re.compile(
    rb'-- (Table structure|Dumping data) for table (`(?:[^`]|``)+`)\r?\n?\Z')
_LOCK_RE = re.compile(
    rb'(?:LOCK TABLES `(?:[^`]|``)+` WRITE|UNLOCK TABLES);\r?\n?\Z')
_TITLE_RE = re.compile(
    rb'-- (?:Current Database: `|Temporary table structure for view `|'
    rb'Final view structure for view `|Sequence structure for |'
    rb"Dumping routines for database '|Dumping events for database '|"
    rb'Flush Grant Tables)')
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
    """Drain a child's stderr so it can never block.

    Its beginning and its end are kept: a failed load may echo a long
    statement before the ERROR line.
    """

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self._pipe = pipe
        self._buf = bytearray()
        self._tail = bytearray()
        self.start()

    def run(self):
        with self._pipe:
            for data in iter(lambda: self._pipe.read(4096), b''):
                kept = max(0, STDERR_KEPT - len(self._buf))
                self._buf += data[:kept]
                self._tail += data[kept:]
                del self._tail[:-STDERR_TAIL]

    @property
    def text(self) -> str:
        text = self._buf.decode('utf-8', 'replace')
        if self._tail:
            text += '\n' + self._tail.decode('utf-8', 'replace')
        return text.strip()


class _LineScanner:
    """Find the few interesting lines of a stream of SQL, fast.

    Only lines starting with one of ``STARTS`` are handed to ``_line``
    whole; they are found with ``bytes.find`` over whole chunks, and
    everything between them (the rows) goes to ``_data`` as memoryview
    slices of the chunk, never copied or looked at line by line. A partial
    line at the end of a chunk is held only while it may be such a line;
    one longer than MAX_LINE is data after all.
    """

    STARTS = _CANDIDATE_STARTS

    def __init__(self):
        # re finds these faster than bytes.find does ('\n' is frequent).
        self._find = re.compile(b'\n(?:%s)' % b'|'.join(
            re.escape(start) for start in self.STARTS)).search
        self._held = bytearray()    # a partial line that may be a candidate
        self._midline = False       # inside a data line passed on as is

    def _line(self, line: bytes) -> None:
        raise NotImplementedError

    def _data(self, data) -> None:
        raise NotImplementedError

    def _candidate(self, data) -> bool:
        """Whether a line starting with ``data`` may be a candidate."""
        head = bytes(data[:max(map(len, self.STARTS))])
        return any(head[:len(s)] == s[:len(head)] for s in self.STARTS)

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        view = memoryview(chunk)
        pos = 0
        if self._held or self._midline:
            end = chunk.find(b'\n') + 1
            if not end:
                if self._held:
                    self._hold(view)
                else:
                    self._data(view)
                return
            if self._held:
                self._held += view[:end]
                line = bytes(self._held)
                self._held.clear()
                self._line(line)
            else:
                self._data(view[:end])
                self._midline = False
            pos = end
        self._scan(chunk, view, pos)

    def _scan(self, chunk, view, pos):
        """Route ``chunk[pos:]``, which starts at a line start."""
        size = len(chunk)
        start = pos if pos == 0 and chunk.startswith(self.STARTS) else None
        while True:
            if start is None:
                # pos - 1 is the newline ending the previous line.
                found = self._find(chunk, max(pos - 1, 0))
                if found is None:
                    break
                start = found.start() + 1
            if start > pos:
                self._data(view[pos:start])
            end = chunk.find(b'\n', start) + 1
            if not end:
                self._hold(view[start:])
                return
            self._line(chunk[start:end])
            pos, start = end, None
        last = chunk.rfind(b'\n', pos) + 1
        if last > pos:
            self._data(view[pos:last])
            pos = last
        if pos < size:
            if self._candidate(view[pos:]):
                self._hold(view[pos:])
            else:
                self._data(view[pos:])
                self._midline = True

    def _hold(self, data):
        self._held += data
        candidate = self._candidate(self._held)
        if len(self._held) > MAX_LINE or not candidate:
            # Its first piece is looked at, the rest streams through.
            held = bytes(self._held)
            self._held.clear()
            (self._line if candidate else self._data)(held)
            self._midline = True

    def _flush_held(self):
        """Hand on a last line that has no newline."""
        if self._held:
            line = bytes(self._held)
            self._held.clear()
            self._line(line)


class _Splitter(_LineScanner):
    """Route a mysqldump stream into one sink per database.

    The header (before the first ``-- Current Database`` marker) and the
    footer (the restore-settings lines and trailer after the last section)
    are small and held; section bytes go straight to their database's sink.
    A database may have several sections (views come in a second pass).
    """

    def __init__(self, open_sink, expected=None):
        super().__init__()
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

    def finish(self) -> None:
        """Route the last bytes and append the footer to every sink."""
        self._flush_held()
        for name in self.sinks:
            self._write(name, bytes(self.footer))

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
            if not bytes(data).strip():
                self.footer += data
                return
            self._unfooter()
        self._write(self._current, data)

    def _write(self, name, data):
        self.sinks[name].write(data)
        self.sizes[name] += len(data)


class _Sections(_LineScanner):
    """Cut one database's dump into numbered units as it streams.

    mysqldump writes each table as a titled block: "-- Table structure
    for table `t`" (DROP, CREATE), "-- Dumping data for table `t`" (LOCK,
    INSERTs, UNLOCK) and then, untitled, the table's triggers. Such a
    table unit runs until the next title. Unit 0 is all before the first
    table: the header of session settings, CREATE DATABASE and USE. Every
    other titled block (views, routines, events, sequences, grants, the
    second "-- Current Database" pass) is serial. Unknown comment lines
    are no boundary. ``pieces`` collects (unit, table or None, bytes) for
    the caller to take after each feed.
    """

    STARTS = (b'-- ', b'LOCK TABLES `', b'UNLOCK TABLES;')

    def __init__(self):
        super().__init__()
        self.header = bytearray()   # the session settings, for workers
        self.header_ok = False      # a "-- Current Database" ended it
        self.unit = 0
        self.table = None
        self.pieces = []

    def finish(self) -> None:
        self._flush_held()

    def _line(self, line):
        if self.table is not None and _LOCK_RE.match(line):
            # A table's LOCK TABLES also locks the tables its foreign
            # keys link it to, as they are at that moment; a table
            # (re)created by another client in between fails its INSERTs
            # ("was not locked with LOCK TABLES"). The lock only saves
            # key writes on MyISAM and Aria: dropped.
            return
        title = _TABLE_TITLE_RE.match(line)
        if title:
            name = title.group(2)
            if title.group(1) != b'Dumping data' or name != self.table:
                self.unit += 1
                self.table = name
        elif _TITLE_RE.match(line):
            if not self.header_ok and line.startswith(b'-- Current '):
                self.header_ok = self.unit == 0 and len(
                    self.header) <= MAX_HEADER
            if self.table is not None:
                self.unit += 1
                self.table = None
        self._data(line)

    def _data(self, data):
        if not self.header_ok and self.unit == 0 and \
                len(self.header) <= MAX_HEADER:
            self.header += data
        self.pieces.append((self.unit, self.table, data))


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


class _Client:
    """One mysql client process, fed SQL through its stdin."""

    def __init__(self, driver, database):
        self.database = database
        path = driver.conf.mysql.mysql_path
        try:
            self.proc = driver._spawn(path, [], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL)
        except OSError as exc:
            raise exception.RestoreFailed('Cannot run %s: %s' % (path, exc))
        self._stderr = _Stderr(self.proc.stderr)
        self.closed = False
        with contextlib.suppress(OSError):
            # Fewer, larger writes and wakeups of the client.
            fcntl.fcntl(self.proc.stdin.fileno(), fcntl.F_SETPIPE_SZ,
                        PIPE_SIZE)

    def write(self, data) -> None:
        """Send SQL; a client that quit early is reported by close()."""
        try:
            self.proc.stdin.write(data)
        except BrokenPipeError:
            self.close(check=True)
            raise exception.RestoreFailed(
                'Loading database %s failed: mysql quit early: %s'
                % (self.database, _error_lines(self._stderr.text)))

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()

    def close(self, check: bool = False) -> None:
        """Let it finish; with ``check``, raise if it failed."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
            self.proc.wait()
            self._stderr.join()
        if check and self.proc.returncode != 0:
            raise exception.RestoreFailed(
                'Loading database %s failed: mysql exited with status %d: %s'
                % (self.database, self.proc.returncode,
                   _error_lines(self._stderr.text)))


class _PositionalReader:
    """Read a file from its start with an offset of its own (pread)."""

    def __init__(self, fd: int):
        self._fd = fd
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = max(os.fstat(self._fd).st_size - self._pos, 0)
        data = os.pread(self._fd, n, self._pos)
        self._pos += len(data)
        return data

    def close(self) -> None:
        """The file belongs to whoever opened it."""


class _ParallelLoad:
    """Load one database's dump with several mysql clients at once.

    Safe because of how mysqldump writes a dump: its header turns off
    foreign key and unique checks for the session, each table's block
    holds all that touches that table (DROP, CREATE, its rows, its
    triggers, created after its rows so they fire for none of them), and
    no CREATE TABLE needs another table to exist. So the tables load in
    any order, side by side; each client first gets the dump's header and
    ``USE``. All before the first table (CREATE DATABASE) is loaded
    first; views, routines, events and any block not understood are
    loaded after every table, serially, in dump order. A dump without
    table titles loads serially, as it is.

    Every worker reads and decompresses the artifact on its own (memory
    flat) and loads the next table no other worker claimed,
    so a big table keeps one worker busy while the others go on. The
    first failure kills every client and is raised.
    """

    def __init__(self, driver, ctx, location, database, sha256, renamer,
                 target, workers, opener=None):
        self.driver = driver
        self.ctx = ctx
        self.location = location
        self.opener = opener
        self.database = database
        self.sha256 = sha256
        self.renamer = renamer
        self.use = b'\nUSE `%s`;\n' % target.replace('`', '``').encode()
        self.workers = workers
        self.lock = threading.Lock()
        self.claimed = set()
        self.clients = []
        self.failure = None
        self.stopped = threading.Event()
        self.loaded = 0     # SQL bytes read by the first worker
        self.tail = tempfile.SpooledTemporaryFile(max_size=TAIL_IN_MEMORY)

    def run(self) -> None:
        chunks = self.driver._chunks(self.ctx, self.location, self.sha256,
                                     self.renamer, self.opener)
        sections = _Sections()
        try:
            with contextlib.closing(self.tail):
                rest = self._first(chunks, sections)
                if rest is not None:
                    self._tables(chunks, sections, rest)
                    self._last(sections.header)
        except BaseException as exc:
            self._stop()
            _reraise(exc, exception.RestoreFailed,
                     'Loading database %s failed' % self.database)
        finally:
            chunks.close()

    def _client(self):
        client = _Client(self.driver, self.database)
        with self.lock:
            self.clients.append(client)
            if self.stopped.is_set():
                client.kill()
        return client

    def _stop(self):
        self.stopped.set()
        with self.lock:
            clients = list(self.clients)
        for client in clients:
            client.kill()
        for client in clients:
            client.close()

    def _first(self, chunks, sections):
        """Load all before the first table; return the first table's pieces.

        None when the dump loaded serially to its end.
        """
        client = self._client()
        serial = False
        for chunk in chunks:
            sections.feed(chunk)
            pieces, sections.pieces = sections.pieces, []
            for i, (unit, _table, data) in enumerate(pieces):
                if unit and not serial:
                    if not sections.header_ok:
                        serial = True   # not a dump we understand
                    else:
                        client.close(check=True)
                        return pieces[i:]
                client.write(data)
                self.ctx.progress(len(data), 0)
        sections.finish()
        for _unit, _table, data in sections.pieces:
            client.write(data)
            self.ctx.progress(len(data), 0)
        client.close(check=True)
        return None

    def _tables(self, chunks, sections, rest):
        threads = [threading.Thread(target=self._worker, args=(
            0, chunks, sections, rest), daemon=True)]
        threads += [threading.Thread(target=self._worker, args=(
            n, None, None, []), daemon=True)
            for n in range(1, self.workers)]
        for thread in threads:
            thread.start()
        reported = 0
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(IDLE_POLL)
                    # Progress is reported (and a cancellation noticed)
                    # from this thread only.
                    loaded = self.loaded
                    self.ctx.progress(loaded - reported, 0)
                    reported = loaded
                    if self.failure is not None:
                        self._stop()
            self.ctx.progress(self.loaded - reported, 0)
        except BaseException:
            self._stop()
            for thread in threads:
                thread.join()
            raise
        if self.failure is not None:
            raise self.failure

    def _worker(self, number, chunks, sections, rest):
        client = None
        try:
            if chunks is None:
                chunks = self.driver._chunks(self.ctx, self.location,
                                             self.sha256, self.renamer,
                                             self.opener)
                sections = _Sections()
            mine = current = None
            with contextlib.closing(chunks):
                pieces, done = rest, False
                while True:
                    for unit, table, data in pieces:
                        if self.stopped.is_set():
                            return
                        if unit != current:
                            current = unit
                            mine = self._claim(unit, table)
                        if mine:
                            if client is None:
                                client = self._client()
                                client.write(bytes(sections.header) +
                                             self.use)
                            client.write(data)
                        elif table is None and unit and number == 0:
                            self.tail.write(data)
                    if number == 0:
                        self.loaded += sum(len(p[2]) for p in pieces)
                    if done:
                        break
                    chunk = next(chunks, None)
                    if chunk is None:
                        sections.finish()
                        done = True
                    else:
                        sections.feed(chunk)
                    pieces, sections.pieces = sections.pieces, []
            if client is not None:
                client.close(check=True)
        except BaseException as exc:
            with self.lock:
                if self.failure is None and not self.stopped.is_set():
                    self.failure = exc
            self.stopped.set()
            if client is not None:
                client.kill()
                client.close()

    def _claim(self, unit, table):
        """Whether this worker loads ``unit``: the first to see it does."""
        if table is None or not unit:
            return False
        with self.lock:
            if unit in self.claimed:
                return False
            self.claimed.add(unit)
            return True

    def _last(self, header):
        """Views, routines, events and the rest, after all tables."""
        if not self.tail.tell():
            return
        self.tail.seek(0)
        client = self._client()
        client.write(bytes(header) + self.use)
        for data in iter(lambda: self.tail.read(CHUNK), b''):
            client.write(data)
        client.close(check=True)


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

    def membership(self) -> dict:
        """Heartbeat facts of the server's cluster: {'galera': ...} or {}."""
        return galera.describe(self._query)

    def galera_state(self) -> galera.NodeState | None:
        """The server's wsrep state; None when it is not a Galera member."""
        return galera.read(self._query)

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
        # A restore's own save of what it replaces runs on any member.
        member = self.galera_state() if databases is None else None
        if member is not None:
            galera.check_usable(member, ctx.host)
        databases = self._databases(databases)
        log_bin = self._query('SELECT @@log_bin')[:1] == ['1']
        writers, committed = {}, []
        try:
            artifacts = self._dump(ctx, databases, log_bin, writers,
                                   committed)
            if member is not None:
                for artifact in artifacts:
                    artifact.meta['galera'] = galera.meta(member, ctx.host)
            return artifacts
        except BaseException as exc:
            for writer, _hw, _comp in writers.values():
                writer.abort()
            for location in committed:
                ctx.storage.delete(location)
            _reraise(exc, exception.DumpFailed,
                     'mysqldump of %s failed' % ', '.join(databases))

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
        splitter = _Splitter(open_sink, expected=databases)
        # Unbuffered: select() then sees all there is, and a read returns
        # what is available instead of waiting for a full chunk.
        proc = self._spawn(self.conf.mysql.mysqldump_path,
                           args + ['--databases'] + databases, bufsize=0,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        stderr = _Stderr(proc.stderr)
        with contextlib.suppress(OSError):
            # Fewer, larger reads: a 64 KiB pipe means a wakeup, a read
            # and a split call per 64 KiB.
            fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
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
                (': ' + stderr.text[:STDERR_SHOWN]) if stderr.text else ''))
        if stderr.text:
            ctx.warnings.append('mysqldump: ' + stderr.text[:STDERR_SHOWN])

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

    # -- restore -------------------------------------------------------

    def load(self, ctx: base.TaskContext, location: str, database: str,
             expected_sha256: str, verified: bool = False) -> None:
        """Load one database's artifact into the server.

        Unless ``verified`` (the caller checked this very artifact with
        verify() and the same sha256 earlier in the same restore), the
        artifact is first checked: its sha256, that it decompresses, holds
        ``database`` only and ends with mysqldump's trailer, so a bad
        artifact is refused before the server is touched. The sha256 is
        checked again while loading: a mismatch fails the load.
        """
        if not verified:
            self._check_artifact(ctx, location, database, expected_sha256)
        self._load(ctx, location, database, expected_sha256, None, database)
        self._warn_unreplicated(ctx, database)

    def _warn_unreplicated(self, ctx, database):
        """On a Galera member, name the loaded tables it keeps to itself."""
        if self.galera_state() is None:
            return
        tables = galera.unreplicated_tables(self._query, database)
        if tables:
            message = ('Galera replicates InnoDB tables only: the rows of '
                       '%s were loaded on %s only and are not replicated '
                       'to the other members' % (', '.join(tables),
                                                 ctx.host))
            LOG.warning(message)
            ctx.warnings.append(message)

    def restore_parallelism(self) -> int:
        """How many mysql clients load the tables of one database."""
        wanted = self.conf.mysql.restore_parallelism
        return wanted or min(AUTO_PARALLELISM, os.cpu_count() or 1)

    def _load(self, ctx, location, database, sha256, renamer, target):
        workers = self.restore_parallelism()
        if workers <= 1:
            self._load_serially(ctx, location, database, sha256, renamer)
            return
        # The clients, and a serial retry, read one fetched copy.
        with self._fetched_once(ctx, location) as opener:
            try:
                _ParallelLoad(self, ctx, location, database, sha256,
                              renamer, target, workers, opener).run()
            except exception.RestoreFailed as exc:
                if not _TRANSIENT_RE.search(exc.message):
                    raise
                # InnoDB's statistics tables make concurrent DROP/CREATE
                # TABLE wait on each other now and then; a dump drops and
                # recreates all it holds, so one client can load it again.
                LOG.warning('%s; loading database %s again with one client',
                            exc.message, database)
                self._load_serially(ctx, location, database, sha256,
                                    renamer, opener)

    def _load_serially(self, ctx, location, database, sha256, renamer,
                       opener=None):
        """Load a dump as it is, through one client."""
        client = _Client(self, database)
        try:
            for chunk in self._chunks(ctx, location, sha256, renamer,
                                      opener):
                client.write(chunk)
                ctx.progress(len(chunk), 0)
        except BaseException as exc:
            client.kill()
            client.close()
            _reraise(exc, exception.RestoreFailed,
                     'Loading database %s failed' % database)
        client.close(check=True)

    def _chunks(self, ctx, location, sha256, renamer=None, opener=None):
        """Yield an artifact's SQL; at its end, check its sha256.

        ``opener`` reads the artifact from elsewhere than its storage (a
        copy from _fetched_once).
        """
        rewrite = renamer() if renamer else None
        raw = opener() if opener else ctx.storage.open_reader(location)
        with contextlib.closing(raw):
            reader = streams.HashingReader(raw)
            source = streams.decompressor(reader)
            for chunk in iter(lambda: source.read(CHUNK), b''):
                yield rewrite(chunk) if rewrite else chunk
            if rewrite:
                yield rewrite(b'', final=True)
            reader.drain()
        if reader.sha256 != sha256:
            raise exception.ArtifactCorrupt(
                'Artifact %s has sha256 %s, expected %s; the load was '
                'stopped' % (location, reader.sha256, sha256))

    @contextlib.contextmanager
    def _fetched_once(self, ctx, location):
        """Yield an opener for each client reading ``location``, or None.

        None (read it from storage) when the artifact is a local file.
        An off-site or encrypted one is fetched and decrypted once, into
        an unlinked file of the agent's scratch directory, which every
        client then reads with its own offset. If the copy cannot be made
        (no space there), each client fetches the artifact after all.
        """
        if ctx.storage.direct_path(location) is not None:
            yield None
            return
        scratch = os.path.join(self.conf.state_path, 'agent', 'scratch')
        try:
            os.makedirs(scratch, mode=0o700, exist_ok=True)
            copy = tempfile.TemporaryFile(dir=scratch, buffering=0)
        except OSError as exc:
            LOG.warning('Cannot keep a copy of %s in %s (%s): each mysql '
                        'client fetches it', location, scratch, exc)
            yield None
            return
        with copy:
            copied = True
            # Errors reading the storage are raised; only a copy that
            # cannot be written falls back.
            with contextlib.closing(ctx.storage.open_reader(location)) as raw:
                for data in iter(lambda: raw.read(CHUNK), b''):
                    try:
                        copy.write(data)
                    except OSError as exc:
                        LOG.warning('Cannot keep a copy of %s in %s (%s): '
                                    'each mysql client fetches it',
                                    location, scratch, exc)
                        copied = False
                        break
                    ctx.progress(0, 0)     # notices a cancellation
            yield (functools.partial(_PositionalReader, copy.fileno())
                   if copied else None)

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
                       lambda: _Renamer(database, scratch), scratch)
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

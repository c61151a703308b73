"""The mariabackup driver: a physical copy of the whole MariaDB server.

``mariadb-backup --backup --stream=xbstream`` copies the server's data
files while it serves and streams them through the compressor into one
artifact. It is the fast full recovery of a database node; the mysql
driver's logical dumps stay the way to restore a single database.

A restore unpacks the stream next to the data directory (checking every
path before mbstream writes it and the sha256 at the end), prepares it
(applies the redo log) and moves it into a fresh directory, all while the
server may still run; only then is it swapped with the live one, which is
kept as ``<datadir>.orig`` (the agent's restore phases keep
``.orig-<timestamp>``): a corrupt artifact or a failed prepare never
touches the data directory.

The server connection is the mysql driver's: the same [mysql] options and
option file contents, never credentials in argv.
"""

import collections
import contextlib
import fcntl
import os
import pwd
import queue
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time

import psutil
import zstandard

from osbackup import artifact_kinds
from osbackup.drivers import base
from osbackup.drivers import galera
from osbackup.drivers import mysql
from osbackup import durable
from osbackup import exception
from osbackup import streams

KIND = artifact_kinds.PHYSICAL
SUFFIX = '.xbstream.zst'
DEFAULT_DATADIR = '/var/lib/mysql'
CHUNK = streams.CHUNK
F_SETPIPE_SZ = getattr(fcntl, 'F_SETPIPE_SZ', 1031)
PIPE_SIZE = 1 << 20
# Chunks (of up to CHUNK bytes) held between a child's pipe and the thread
# that compresses or decompresses: a bounded read-ahead.
QUEUE_DEPTH = 16
# mbstream extracts a stream fed in zstd's natural 128 KiB blocks about
# half again as fast as one fed 1 MiB writes (measured on 10.11).
UNPACK_CHUNK = 128 * 1024
IDLE_POLL = 1.0
STDERR_TAIL = 64 * 1024
STDERR_HEAD = 16 * 1024
STDERR_SHOWN = 600
COMPLETED = 'completed OK!'
# Files InnoDB locks while a server runs on the directory.
LOCKED_FILES = ('ibdata1', 'ib_logfile0')
_BINLOG_RE = re.compile(
    r"MySQL binlog position: filename '([^']*)', position '?(\d+)'?"
    r"(?:, GTID of the last change '([^']*)')?")
# Logged by --galera-info: the cluster position the copy is consistent at.
_GALERA_RE = re.compile(r'WSREP: (?:Recovered|Recording) (?:WSREP )?'
                        r'position[: ]+([0-9a-f-]{36}):(-?\d+)', re.I)
_DATADIR_MISMATCH = "option 'datadir' has different values"
_ERROR_RE = re.compile(r'error|failed|cannot|can\'t|denied', re.I)

# xbstream: every chunk starts "XBSTCK01", flags (1), type (1), path length
# (uint32 LE) and the path; a payload chunk ('P') then has its length and
# offset (uint64 LE each) and a checksum (uint32) before the payload; an
# end-of-file chunk ('E') has nothing more.
XB_MAGIC = b'XBSTCK01'
XB_PREFIX = 14
XB_PAYLOAD_HEADER = 20
XB_MAX_PATH = 4096


class _StreamGuard:
    """Refuse an xbstream whose paths would escape the extraction dir.

    It reads the chunk headers of the stream on its way to mbstream, so a
    bad chunk is refused before mbstream sees it (mbstream 10.11 skips a
    ``..`` entry with a message but still exits 0, which would restore a
    tampered stream without a word); payload bytes are skipped over, not
    copied.
    """

    def __init__(self):
        self._head = bytearray()
        self._skip = 0
        self.files = set()

    def _need(self):
        head = self._head
        if len(head) < XB_PREFIX:
            return XB_PREFIX
        if head[:8] != XB_MAGIC:
            raise exception.ArtifactCorrupt('not an xbstream (bad chunk '
                                            'magic)')
        path_len = struct.unpack_from('<I', head, 10)[0]
        if path_len > XB_MAX_PATH:
            raise exception.ArtifactCorrupt('xbstream chunk path of %d '
                                            'bytes' % path_len)
        kind = head[9:10]
        if kind == b'E':
            return XB_PREFIX + path_len
        if kind == b'P':
            return XB_PREFIX + path_len + XB_PAYLOAD_HEADER
        raise exception.ArtifactCorrupt('unknown xbstream chunk type %r'
                                        % bytes(kind))

    def feed(self, data) -> None:
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            if self._skip:
                step = min(self._skip, len(view) - pos)
                self._skip -= step
                pos += step
                continue
            need = self._need()
            if len(self._head) < need:
                step = min(need - len(self._head), len(view) - pos)
                self._head += view[pos:pos + step]
                pos += step
                if len(self._head) < need or self._need() != need:
                    continue
            self._chunk()

    def _chunk(self):
        head = self._head
        path_len = struct.unpack_from('<I', head, 10)[0]
        raw = bytes(head[XB_PREFIX:XB_PREFIX + path_len])
        path = raw.decode('utf-8', 'surrogateescape')
        parts = path.split('/')
        if (not path or path.startswith('/') or '\0' in path or
                '..' in parts):
            raise exception.UnsafeArchive(
                'xbstream entry %r would be written outside the restore '
                'directory' % path[:200])
        if head[9:10] == b'P':
            self._skip = struct.unpack_from('<Q', head,
                                            XB_PREFIX + path_len)[0]
        self.files.add(path)
        head.clear()

    def finish(self) -> None:
        if self._head or self._skip:
            raise exception.ArtifactCorrupt('the xbstream ends inside a '
                                            'chunk (truncated)')
        if not self.files:
            raise exception.ArtifactCorrupt('the xbstream is empty')


class _PipeReader(threading.Thread):
    """Read a child's stdout (or a stored artifact) ahead, bounded.

    The copier keeps streaming while the calling thread compresses, as
    it does in a shell pipeline; b'' in the queue is the end.
    """

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self._pipe = pipe
        self._stopped = threading.Event()
        self._done = False
        self.queue = queue.Queue(QUEUE_DEPTH)
        self.error = None
        self.start()

    def run(self):
        data = b''
        try:
            while True:
                data = self._pipe.read(CHUNK)
                if not self._put(data) or not data:
                    return
        except Exception as exc:    # handed to the consumer
            self.error = exc
            self._put(b'')

    def _put(self, data):
        while not self._stopped.is_set():
            try:
                self.queue.put(data, timeout=IDLE_POLL)
                return True
            except queue.Full:
                continue
        return False

    def read(self, size=-1) -> bytes:
        """The next chunk read ahead (any size); b'' at the end."""
        if self._done:
            return b''
        data = self.queue.get()
        self._done = not data
        return data

    def stop(self):
        """Stop reading ahead and wait for the thread to end.

        The source is not read any more once this returns (what was read
        ahead is dropped), so the caller may read the rest itself. A
        pipe's writer must be dead or done first.
        """
        self._stopped.set()
        self.join()


class _PipeWriter(threading.Thread):
    """Write queued chunks to a child's stdin from a thread of its own.

    The caller decompresses the next chunk while the child writes the
    previous one to disk. A child that quits early only makes ``error``
    set; the queue keeps draining so the caller never blocks.
    """

    def __init__(self, pipe, depth=QUEUE_DEPTH):
        super().__init__(daemon=True)
        self._pipe = pipe
        self._queue = queue.Queue(depth)
        self.error = None
        self.start()

    def write(self, data) -> None:
        self._queue.put(data)

    def close(self) -> None:
        """Send the end of input and wait until it is written."""
        self._queue.put(None)
        self.join()

    def run(self):
        try:
            while (data := self._queue.get()) is not None:
                if self.error is None:
                    try:
                        self._pipe.write(data)
                    except OSError as exc:
                        self.error = exc
        finally:
            with contextlib.suppress(OSError):
                self._pipe.close()


def _widen_pipe(pipe):
    """Let the copier run ahead while a chunk is compressed.

    A 64 KiB pipe stalls mariadb-backup at every compression call; 1 MiB
    lets it keep reading the data files meanwhile.
    """
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_SIZE)


class _StderrTail(threading.Thread):
    """Drain a child's stderr so it can never block; keep its end.

    mariadb-backup logs every file it copies; its errors come last.
    """

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self._pipe = pipe
        self._chunks = collections.deque()
        self._size = 0
        self._head = bytearray()
        self.start()

    def run(self):
        with self._pipe:
            for data in iter(lambda: self._pipe.read(4096), b''):
                self._head += data[:max(0, STDERR_HEAD - len(self._head))]
                self._chunks.append(data)
                self._size += len(data)
                while self._size - len(self._chunks[0]) > STDERR_TAIL:
                    self._size -= len(self._chunks.popleft())

    @property
    def text(self) -> str:
        return b''.join(self._chunks).decode('utf-8', 'replace').strip()

    @property
    def head(self) -> str:
        return self._head.decode('utf-8', 'replace')

    def completed(self) -> bool:
        lines = self.text.splitlines()
        return bool(lines) and lines[-1].rstrip().endswith(COMPLETED)

    def summary(self) -> str:
        """The error lines of the tail, else its last lines; short."""
        lines = self.text.splitlines()
        errors = [line.strip() for line in lines if _ERROR_RE.search(line)]
        shown = '; '.join(errors[-4:] or [line.strip()
                                          for line in lines[-3:]])
        return shown[-STDERR_SHOWN:] or '(no message)'


class MariaBackupDriver(base.ServiceDriver, base.PhysicalRestore):
    """The whole local MariaDB server, copied physically by mariadb-backup."""

    name = 'mariabackup'

    def __init__(self, conf):
        super().__init__(conf)
        # The connection (options, option file contents, queries) is the
        # mysql driver's: one [mysql] configuration for both.
        self._client = mysql.MySQLDriver(conf)
        self._desync = galera.Desync(self._client._query, conf.state_path)

    @property
    def options(self):
        return self.conf.mariabackup

    def is_present(self) -> bool:
        """Enabled, mariadb-backup installed, and a local server to copy."""
        opts, client = self.options, self.conf.mysql
        if not opts.enabled or not shutil.which(opts.mariabackup_path):
            return False
        # mariadb-backup reads the data files: the server must be local.
        if client.host not in mysql.LOCAL_HOSTS and not client.socket:
            return False
        if client.socket or os.path.isdir(self.path(mysql.DATADIR_MARKER)):
            return True
        return any(proc.info['name'] in mysql.SERVER_PROCESSES
                   for proc in psutil.process_iter(['name']))

    def units(self) -> list[str]:
        """The server's units: a physical restore needs it stopped."""
        return list(self.options.units)

    def membership(self) -> dict:
        """Heartbeat facts of the server's cluster (the mysql driver's)."""
        return self._client.membership()

    def recover(self) -> None:
        """At agent start: resync a node a killed agent left desynced."""
        self._desync.recover()

    # -- server --------------------------------------------------------

    def server_facts(self) -> dict:
        """The server's datadir, version, wsrep_on and log_bin."""
        rows = self._client._query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN "
            "('datadir', 'version', 'wsrep_on', 'log_bin')")
        return dict(row.split('\t', 1) for row in rows if '\t' in row)

    def galera(self, facts: dict) -> bool:
        """Whether to add --galera-info ([mariabackup] galera_info)."""
        mode = self.options.galera_info
        if mode != 'auto':
            return mode == 'on'
        return facts.get('wsrep_on', '').upper() == 'ON'

    def backup_args(self, facts: dict) -> list[str]:
        """mariadb-backup's arguments after the option file."""
        opts = self.options
        args = ['--backup', '--stream=xbstream',
                '--datadir=%s' % (opts.datadir or facts['datadir']),
                '--parallel=%d' % opts.parallel]
        if self.galera(facts):
            args.append('--galera-info')
        if opts.throttle:
            args.append('--throttle=%d' % opts.throttle)
        return args + list(opts.extra_args)

    # -- backup --------------------------------------------------------

    def backup(self, ctx: base.TaskContext) -> list[base.Artifact]:
        """Stream one physical copy of the server into one artifact."""
        try:
            facts = self.server_facts()
            if 'datadir' not in facts and not self.options.datadir:
                raise exception.DumpFailed('The server did not report its '
                                           'datadir')
            args = self.backup_args(facts)
            member = self._client.galera_state()
            if member is not None:
                galera.check_usable(member, ctx.host)
        except BaseException as exc:
            mysql._reraise(exc, exception.DumpFailed,
                           'mariadb-backup could not query the server')
        key = ctx.key(self.name, SUFFIX)
        writer = ctx.storage.open_writer(key)
        try:
            # Desynced: flow control from this busy node would stall
            # writes on every member.
            with writer, self._desync.during(member, ctx.host):
                sink = streams.HashingWriter(writer)
                comp = streams.compressor(
                    sink, level=self.conf.storage.compression_level,
                    threads=self.conf.storage.compression_threads)
                raw, stderr = self._stream(ctx, args, comp)
                comp.close()
                location = writer.commit()
        except BaseException as exc:
            mysql._reraise(exc, exception.DumpFailed,
                           'mariadb-backup of the server failed')
        binlog = _BINLOG_RE.search(stderr.text)
        position = _GALERA_RE.search(stderr.text)
        if binlog is None and facts.get('log_bin') == 'ON':
            ctx.warnings.append('The binary log is on but mariadb-backup '
                                'reported no binlog position')
        meta = {'server_version': facts.get('version'),
                'datadir': self.options.datadir or facts.get('datadir'),
                'galera': galera.meta(
                    member, ctx.host,
                    int(position.group(2)) if position else None),
                'galera_info': '--galera-info' in args,
                'binlog': binlog and {'file': binlog.group(1),
                                      'position': int(binlog.group(2)),
                                      'gtid': binlog.group(3)},
                'uncompressed_size': raw, 'format': 'xbstream'}
        return [base.Artifact(name=self.name, kind=KIND, location=location,
                              size=sink.size, sha256=sink.sha256,
                              meta=meta, key=key)]

    def _stream(self, ctx, args, sink):
        """Run mariadb-backup into ``sink``; return (bytes, stderr)."""
        with tempfile.TemporaryDirectory(prefix='osbackup-mariabackup-') \
                as scratch:
            # A scratch target dir and cwd: streaming writes nothing
            # there, but mariadb-backup must never leave files around.
            try:
                proc = self._spawn(
                    [self.options.mariabackup_path] + args +
                    ['--target-dir=%s' % scratch], cwd=scratch)
            except OSError as exc:
                raise exception.DumpFailed('Cannot run %s: %s' % (
                    self.options.mariabackup_path, exc))
            stderr = _StderrTail(proc.stderr)
            _widen_pipe(proc.stdout)
            reader = _PipeReader(proc.stdout)
            total, eof = 0, False
            try:
                while not eof:
                    try:
                        chunk = reader.queue.get(timeout=IDLE_POLL)
                    except queue.Empty:
                        ctx.progress(0, 0)      # a cancellation point
                        continue
                    sink.write(chunk)
                    total += len(chunk)
                    ctx.progress(len(chunk), 0)
                    eof = not chunk
            finally:
                if not eof:
                    proc.kill()
                reader.stop()
                proc.stdout.close()
                returncode = proc.wait()
                stderr.join()
            if reader.error is not None:
                raise exception.DumpFailed('Reading mariadb-backup\'s '
                                           'output failed: %s'
                                           % reader.error)
        if _DATADIR_MISMATCH in stderr.head:
            # It connected to another server than the one whose datadir
            # it was given (and copied that server's files).
            raise exception.DumpFailed(
                'mariadb-backup reached a server whose datadir is not %s; '
                'check the [mysql] connection options and [mariabackup] '
                'datadir' % next(a.split('=', 1)[1] for a in args
                                 if a.startswith('--datadir=')))
        if returncode != 0 or not stderr.completed():
            raise exception.DumpFailed(
                'mariadb-backup of the server failed: %s: %s' % (
                    'it exited with status %d' % returncode if returncode
                    else 'its log does not end with "%s"' % COMPLETED,
                    stderr.summary()))
        return total, stderr

    def priority(self) -> list[str]:
        """The nice/ionice prefix of a backup's mariadb-backup command.

        Both exec the command in their own process: /proc/self/fd of the
        option file is still mariadb-backup's.
        """
        opts = self.options
        prefix = []
        if opts.nice:
            prefix += ['nice', '-n', str(opts.nice)]
        if opts.ionice_class == 'idle':
            prefix += ['ionice', '-c', '3']
        elif opts.ionice_class == 'best-effort':
            prefix += ['ionice', '-c', '2', '-n', '7']
        return prefix

    def _spawn(self, argv, **popen_args):
        """Start mariadb-backup with the [mysql] credentials.

        Unlike the mysql clients, mariadb-backup reads its option files
        twice, so a pipe (read once) would leave the second read empty
        and it would silently connect to the default server. A memfd
        reopened through /proc reads from the start every time, and is
        never on disk or in argv.
        """
        fd = os.memfd_create('osbackup-mariabackup', os.MFD_CLOEXEC)
        try:
            # The server's clients ignore a world-writable option file.
            os.fchmod(fd, 0o600)
            os.write(fd, self._client._option_file())
            return subprocess.Popen(
                self.priority() + argv[:1] +
                ['--defaults-extra-file=/proc/self/fd/%d' % fd] + argv[1:],
                pass_fds=(fd,), bufsize=0,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, **popen_args)
        finally:
            os.close(fd)

    # -- restore -------------------------------------------------------

    def datadir(self, override: str | None = None) -> str:
        """The data directory a restore replaces (never from a message)."""
        return os.path.abspath(override or self.options.datadir or
                               self.path(DEFAULT_DATADIR)).rstrip('/')

    def restore(self, ctx: base.TaskContext, location: str,
                expected_sha256: str, datadir: str | None = None) -> dict:
        """Replace a stopped server's data directory with a backup.

        ``stage`` builds the restored directory beside ``datadir``
        (default: [mariabackup] datadir, else /var/lib/mysql under
        [agent] root_path), then it is swapped in; the old directory is
        kept as ``<datadir>.orig`` (``.orig-<time>`` if that exists).
        Raises ArtifactCorrupt or RestoreFailed, with the data directory
        untouched, when the artifact or the prepare is bad or a server
        still runs on the directory.
        """
        datadir = self.datadir(datadir)
        self._check_stopped(datadir)
        parent, base_name = os.path.split(datadir)
        os.makedirs(parent, mode=0o755, exist_ok=True)
        fresh = tempfile.mkdtemp(dir=parent,
                                 prefix='.%s.osbackup-new-' % base_name)
        try:
            self.stage(ctx, location, expected_sha256, datadir, fresh)
            orig = self._swap(datadir, fresh)
            fresh = None
        except BaseException as exc:
            mysql._reraise(exc, exception.RestoreFailed,
                           'Physical restore of %s failed' % datadir)
        finally:
            if fresh is not None:
                shutil.rmtree(fresh, ignore_errors=True)
        return {'datadir': datadir, 'orig': orig}

    def stage(self, ctx: base.TaskContext, location: str,
              expected_sha256: str, datadir: str, dest: str) -> None:
        """Build a ready data directory from a backup at ``dest``.

        ``dest`` (absent or empty, on the filesystem of ``datadir`` so
        the swap is a rename) receives the prepared files with the owner
        and mode of ``datadir``. The stream is unpacked into
        ``<dest>.unpack`` first, removed afterwards. Nothing else is
        touched; the server may keep running meanwhile.
        """
        work = dest + '.unpack'
        shutil.rmtree(work, ignore_errors=True)
        os.mkdir(work, 0o700)
        try:
            self._unpack(ctx, location, expected_sha256, work)
            self._run(ctx, self._prepare_args(work), 'prepare')
            os.makedirs(dest, mode=0o700, exist_ok=True)
            if os.listdir(dest):
                raise exception.RestoreFailed('%s is not empty' % dest)
            self._run(ctx, self._move_back_args(work, dest), 'move-back')
            self._own(dest, datadir)
        except BaseException as exc:
            mysql._reraise(exc, exception.RestoreFailed,
                           'Staging the physical copy at %s failed' % dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def check_stopped(self, datadir: str) -> None:
        """Raise RestoreFailed if a running server holds ``datadir``."""
        self._check_stopped(datadir)

    def _check_stopped(self, datadir):
        """Refuse a data directory a running server holds locked."""
        for name in LOCKED_FILES:
            try:
                fd = os.open(os.path.join(datadir, name), os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise exception.RestoreFailed(
                    'A server is running on %s (%s is locked): stop it '
                    'before a physical restore; nothing was changed'
                    % (datadir, name))
            finally:
                os.close(fd)    # also drops the lock just taken

    def _unpack(self, ctx, location, expected_sha256, staging):
        opts = self.options
        try:
            proc = subprocess.Popen(
                [opts.mbstream_path, '-x', '-C', staging,
                 '--parallel=%d' % opts.parallel],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)
        except OSError as exc:
            raise exception.RestoreFailed('Cannot run %s: %s'
                                          % (opts.mbstream_path, exc))
        stderr = _StderrTail(proc.stderr)
        _widen_pipe(proc.stdin)
        writer = _PipeWriter(proc.stdin, QUEUE_DEPTH * CHUNK // UNPACK_CHUNK)
        guard = _StreamGuard()
        problem = None
        with contextlib.closing(ctx.storage.open_reader(location)) as raw:
            reader = streams.HashingReader(raw)
            # Read and hashed in a thread of its own, as zstd -dc reads
            # ahead: the disk works while this thread decompresses.
            ahead = _PipeReader(reader)
            try:
                # python-zstandard's own reader costs less than half the
                # CPU of streams.decompressor; the truncation it does not
                # report is caught by the sha256 (and the stream guard)
                # before anything is swapped in.
                source = zstandard.ZstdDecompressor().stream_reader(
                    ahead, read_size=CHUNK, read_across_frames=True)
                for chunk in iter(lambda: source.read(UNPACK_CHUNK), b''):
                    guard.feed(chunk)
                    writer.write(chunk)
                    ctx.progress(len(chunk), 0)
                    if writer.error is not None:
                        break   # mbstream quit; its status says why
                else:
                    guard.finish()
            except zstandard.ZstdError as exc:
                problem = 'does not decompress (%s)' % exc
            except exception.ArtifactCorrupt as exc:
                problem = 'is not a mariadb-backup stream (%s)' % exc
            except BaseException:
                proc.kill()
                raise
            finally:
                ahead.stop()
                writer.close()
                returncode = proc.wait()
                stderr.join()
            if isinstance(ahead.error, exception.OsbackupError):
                raise ahead.error
            if ahead.error is not None:
                raise exception.RestoreFailed('Reading artifact %s failed: %s'
                                              % (location, ahead.error))
            reader.drain()
        if reader.sha256 != expected_sha256:
            problem = 'has sha256 %s, the catalogue says %s' % (
                reader.sha256, expected_sha256)
        if problem:
            raise exception.ArtifactCorrupt(
                'Artifact %s %s; the data directory was not touched'
                % (location, problem))
        if returncode != 0:
            raise exception.RestoreFailed(
                'mbstream could not unpack %s (status %d): %s'
                % (location, returncode, stderr.summary()))

    def _prepare_args(self, staging):
        args = [self.options.mariabackup_path, '--prepare',
                '--target-dir=%s' % staging]
        if self.options.use_memory:
            args.append('--use-memory=%s' % self.options.use_memory)
        return args

    def _move_back_args(self, staging, fresh):
        # Every InnoDB file goes into the new directory, whatever the
        # server's option files say: nothing may land in live places.
        return [self.options.mariabackup_path, '--move-back',
                '--target-dir=%s' % staging, '--datadir=%s' % fresh,
                '--innodb-data-home-dir=%s' % fresh,
                '--innodb-log-group-home-dir=%s' % fresh,
                '--innodb-undo-directory=%s' % fresh,
                '--parallel=%d' % self.options.parallel]

    def _run(self, ctx, argv, what):
        """Run a mariadb-backup step to its end, cancellable."""
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
        except OSError as exc:
            raise exception.RestoreFailed('Cannot run %s: %s'
                                          % (argv[0], exc))
        stderr = _StderrTail(proc.stderr)
        try:
            while True:
                try:
                    returncode = proc.wait(timeout=IDLE_POLL)
                    break
                except subprocess.TimeoutExpired:
                    ctx.progress(0, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            stderr.join()
        if returncode != 0 or not stderr.completed():
            raise exception.RestoreFailed(
                'mariadb-backup --%s failed (status %d): %s; the data '
                'directory was not touched' % (what, returncode,
                                               stderr.summary()))

    def _own(self, fresh, datadir):
        """Give the restored tree the owner and mode of the old one."""
        try:
            st = os.stat(datadir)
            uid, gid, mode = st.st_uid, st.st_gid, st.st_mode & 0o7777
        except FileNotFoundError:
            uid = gid = None
            mode = 0o750
            if os.geteuid() == 0:
                with contextlib.suppress(KeyError):
                    entry = pwd.getpwnam(self.options.os_user)
                    uid, gid = entry.pw_uid, entry.pw_gid
        os.chmod(fresh, mode)
        if os.geteuid() != 0 or uid is None:
            return
        for top, dirs, files in os.walk(fresh):
            for name in [top] + [os.path.join(top, n) for n in dirs + files]:
                os.lchown(name, uid, gid)

    def _swap(self, datadir, fresh):
        # Checked again: a server may have been started meanwhile.
        self._check_stopped(datadir)
        orig = None
        if os.path.lexists(datadir):
            orig = datadir + '.orig'
            if os.path.lexists(orig):
                orig = '%s.orig-%s' % (datadir,
                                       time.strftime('%Y%m%dT%H%M%S'))
            os.rename(datadir, orig)
        try:
            os.rename(fresh, datadir)
        except OSError:
            if orig:
                os.rename(orig, datadir)
            raise
        durable.fsync_dir(os.path.dirname(datadir))
        return orig

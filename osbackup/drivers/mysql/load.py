"""Loading one database's dump, with several mysql clients at once."""

import contextlib
import functools
import os
import re
import tempfile
import threading

from oslo_log import log as logging

from osbackup.drivers import base
from osbackup.drivers import galera
from osbackup.drivers.mysql import dumpfile
from osbackup.drivers.mysql import spawn
from osbackup import exception
from osbackup import streams

LOG = logging.getLogger(__name__)

# Server errors after which a parallel load is worth one serial retry:
# lock wait timeout and deadlock.
_TRANSIENT_RE = re.compile(r'\bERROR (?:1205|1213) \(')
# restore_parallelism 0: this many clients at most (see conf/mysql.py).
AUTO_PARALLELISM = 4
# Views, routines and events wait in memory up to this, then on disk.
TAIL_IN_MEMORY = 8 << 20


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
        sections = dumpfile._Sections()
        try:
            with contextlib.closing(self.tail):
                rest = self._first(chunks, sections)
                if rest is not None:
                    self._tables(chunks, sections, rest)
                    self._last(sections.header)
        except BaseException as exc:
            self._stop()
            spawn._reraise(exc, exception.RestoreFailed,
                           'Loading database %s failed' % self.database)
        finally:
            chunks.close()

    def _client(self):
        client = spawn._Client(self.driver, self.database)
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
                    thread.join(spawn.IDLE_POLL)
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
                sections = dumpfile._Sections()
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
        for data in iter(lambda: self.tail.read(spawn.CHUNK), b''):
            client.write(data)
        client.close(check=True)


class LoadMixin:
    """Load dumps into the server."""

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
                       opener=None, what=None):
        """Load a dump as it is, through one client.

        ``what`` names what it loads in errors (default: the database).
        """
        client = spawn._Client(self, database, what)
        try:
            for chunk in self._chunks(ctx, location, sha256, renamer,
                                      opener):
                client.write(chunk)
                ctx.progress(len(chunk), 0)
        except BaseException as exc:
            client.kill()
            client.close()
            spawn._reraise(exc, exception.RestoreFailed,
                           'Loading %s failed' % client.what)
        client.close(check=True)

    def _chunks(self, ctx, location, sha256, renamer=None, opener=None):
        """Yield an artifact's SQL; at its end, check its sha256.

        ``opener`` reads the artifact from elsewhere than its storage (a
        copy from _fetched_once).
        """
        rewrite = renamer() if renamer else None
        raw = opener() if opener else ctx.storage.open_reader(location)
        chunks = streams.checked_chunks(
            raw, sha256, lambda actual: exception.ArtifactCorrupt(
                'Artifact %s has sha256 %s, expected %s; the load was '
                'stopped' % (location, actual, sha256)))
        if rewrite is None:
            yield from chunks
            return
        for chunk in chunks:
            yield rewrite(chunk)
        yield rewrite(b'', final=True)

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
                for data in iter(lambda: raw.read(spawn.CHUNK), b''):
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

"""Byte-stream plumbing shared by archives, dumps and storage.

Everything streams: data passes through these wrappers once, in bounded
chunks, so no backup is ever held in memory or copied to a temp file.
"""

import contextlib
import functools
import hashlib
import queue
import threading
import time
import typing

import zstandard

CHUNK = 1 << 20
# Largest piece inflate() yields: memory stays bounded however well the
# data compresses (a run of zeros shrinks a thousandfold and more).
_PIECE = 1 << 18


class Stopwatch:
    """Cumulative seconds per stage of a pipeline: where a backup's time went.

    Each stage adds the time of its own blocking calls (two perf_counter
    calls around each), in whichever thread runs it. Stages that run side
    by side in different threads can add up to more than the wall time;
    a stage that waits on another shows as that stage being slow.
    """

    def __init__(self):
        #: {stage: seconds}; one thread adds to a given stage.
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds


class HashingWriter:
    """Forward writes to ``sink`` while counting bytes and hashing them.

    With a ``stopwatch``, the sink's writes are timed as its ``write``
    stage and the hashing as ``stream_hash``.
    """

    def __init__(self, sink: typing.BinaryIO,
                 on_bytes: typing.Callable[[int], None] | None = None,
                 stopwatch: Stopwatch | None = None):
        self._sink = sink
        self._hash = hashlib.sha256()
        self._on_bytes = on_bytes
        self._stopwatch = stopwatch
        self.size = 0

    def write(self, data) -> int:
        if self._stopwatch is None:
            self._sink.write(data)
            self._hash.update(data)
        else:
            began = time.perf_counter()
            self._sink.write(data)
            written = time.perf_counter()
            self._hash.update(data)
            self._stopwatch.add('write', written - began)
            self._stopwatch.add('stream_hash', time.perf_counter() - written)
        n = len(data)
        self.size += n
        if self._on_bytes is not None:
            self._on_bytes(n)
        return n

    def flush(self) -> None:
        pass

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class HashingReader:
    """Read from ``source`` while counting bytes and hashing them."""

    def __init__(self, source: typing.BinaryIO):
        self._source = source
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n)
        self._hash.update(data)
        self.size += len(data)
        return data

    def readinto(self, buf) -> int:
        n = self._source.readinto(buf)
        if n:
            self._hash.update(memoryview(buf)[:n])
            self.size += n
        return n

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def drain(self) -> None:
        """Read the rest of the source so the hash covers all of it."""
        while self.read(CHUNK):
            pass


def compressor(sink: typing.BinaryIO, level: int = 3, threads: int = 0):
    """Return a zstd stream writer into ``sink``; close it to finish."""
    cctx = zstandard.ZstdCompressor(level=level, threads=threads,
                                    write_checksum=True)
    return cctx.stream_writer(sink, closefd=False)


class _PieceReader:
    """A readable stream over an iterator of byte pieces.

    It holds at most the rest of one piece between reads, and returns a
    piece as it is when a read wants all of it (no copy).
    """

    def __init__(self, pieces: typing.Iterator[bytes]):
        self._pieces = pieces
        self._buffer = b''

    def read(self, n: int = -1) -> bytes:
        out = []
        size = 0
        while n < 0 or size < n:
            if not self._buffer:
                self._buffer = next(self._pieces, b'')
                if not self._buffer:
                    break
            take = self._buffer if n < 0 else self._buffer[:n - size]
            self._buffer = self._buffer[len(take):]
            out.append(take)
            size += len(take)
        return out[0] if len(out) == 1 else b''.join(out)

    def close(self) -> None:
        self._pieces.close()


class Decompressor(_PieceReader):
    """A readable zstd stream that notices truncation, in bounded memory.

    python-zstandard's stream_reader reports a frame cut short as a plain
    end of data; a backup tool must not, so an input that ends inside a
    frame raises TruncatedStream.  The data comes from inflate(), in
    pieces of at most _PIECE bytes, so a read of ``n`` bytes holds little
    more than ``n`` whatever the compression ratio (a crafted artifact of
    zeros cannot fill the memory before its checksum is found wrong).
    """

    def __init__(self, source: typing.BinaryIO):
        super().__init__(inflate(source))


class TruncatedStream(zstandard.ZstdError):
    """The compressed input ended before its last frame did."""


def decompressor(source: typing.BinaryIO) -> Decompressor:
    """Return a readable zstd stream over ``source``."""
    return Decompressor(source)


class _FrameWalker:
    """Follow zstd frame boundaries through the compressed bytes (RFC 8878).

    Only to tell whether the input ends between frames: python-zstandard's
    stream reader takes a frame cut short for the end of the data.  Bytes
    that are not zstd are left to the decoder, which rejects them.
    """

    def __init__(self):
        self._skip = 0          # bytes to pass over before the next field
        self._want = 4          # size of the next field
        self._field = b''
        self._state = 'magic'
        self._checksum = False

    @property
    def between_frames(self) -> bool:
        return self._state == 'magic' and not self._skip and not self._field

    def feed(self, data) -> None:
        pos, end = 0, len(data)
        while pos < end and self._state != 'unknown':
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            take = min(self._want - len(self._field), end - pos)
            self._field += bytes(data[pos:pos + take])
            pos += take
            if len(self._field) == self._want:
                field, self._field = self._field, b''
                self._parse(int.from_bytes(field, 'little'))

    def _parse(self, value: int) -> None:
        state = self._state
        if state == 'magic':
            if value == 0xFD2FB528:
                self._state, self._want = 'descriptor', 1
            elif value & 0xFFFFFFF0 == 0x184D2A50:
                self._state, self._want = 'skippable', 4
            else:
                self._state = 'unknown'
        elif state == 'skippable':
            self._skip = value
            self._state, self._want = 'magic', 4
        elif state == 'descriptor':
            single = bool(value & 0x20)
            self._checksum = bool(value & 0x04)
            self._skip = ((0 if single else 1) + (0, 1, 2, 4)[value & 3] +
                          ((1 if single else 0), 2, 4, 8)[value >> 6])
            self._state, self._want = 'block', 3
        elif state == 'block':
            kind, size = (value >> 1) & 3, value >> 3
            self._skip = 1 if kind == 1 else size
            if value & 1:
                self._skip += 4 if self._checksum else 0
                self._state, self._want = 'magic', 4


def inflate(source: typing.BinaryIO) -> typing.Iterator[bytes]:
    """Yield the decompressed data of ``source`` in bounded pieces.

    Like Decompressor, it decodes every frame and raises TruncatedStream
    when the input ends inside one; unlike it, no piece is larger than
    _PIECE, whatever the compression ratio.
    """
    walker = _FrameWalker()

    class Tap:
        @staticmethod
        def read(n: int) -> bytes:
            data = source.read(n)
            walker.feed(data)
            return data

    reader = zstandard.ZstdDecompressor().stream_reader(
        Tap(), read_size=CHUNK, read_across_frames=True)
    while piece := reader.read(_PIECE):
        yield piece
    if not walker.between_frames:
        raise TruncatedStream('compressed stream ends inside a zstd frame '
                              '(truncated)')


class Ahead:
    """Run an iterator in a helper thread, up to ``depth`` items ahead.

    For pipelines whose stages release the GIL (reading, zstd, hashing):
    the helper's work on the next items overlaps the caller's on this one,
    and at most ``depth`` items wait, so memory stays flat.  What the
    iterator raises (a source's errors, a cancelled task's progress
    callback) is raised in the caller.  Call close() when done early.
    """

    def __init__(self, iterator: typing.Iterator, depth: int = 4):
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(iterator,),
                                        name='osbackup-ahead', daemon=True)
        self._thread.start()

    def _run(self, iterator) -> None:
        try:
            for item in iterator:
                if not self._put((True, item)):
                    return
            self._put((False, None))
        except BaseException as exc:
            self._put((False, exc))
        finally:
            # A generator stopped early still runs its finally blocks
            # (which may close an Ahead of its own).
            close = getattr(iterator, 'close', None)
            if close is not None:
                close()

    def _put(self, item) -> bool:
        # The caller may stop reading at any time: never block for good.
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        more, item = self._queue.get()
        if more:
            return item
        self.close()
        if item is not None:
            raise item
        raise StopIteration

    def close(self) -> None:
        """Stop the helper thread and wait for it; idempotent."""
        self._done = True
        self._stop.set()
        self._thread.join()


class ReadAhead(_PieceReader):
    """A readable stream whose source is read in a helper thread.

    For a consumer busy with what it has read (decompressing): reading
    and hashing the source (a HashingReader) overlap that work.  Call
    close() when done early.
    """

    def __init__(self, source: typing.BinaryIO, depth: int = 4):
        super().__init__(Ahead(iter(functools.partial(source.read, CHUNK),
                                    b''), depth))


def checked_chunks(raw: typing.BinaryIO, sha256: str,
                   corrupt: typing.Callable[[str], Exception],
                   ) -> typing.Iterator[bytes]:
    """Yield the decompressed content of a stored artifact, then check it.

    ``raw`` is closed at the end. Its sha256 is compared once every byte
    was read: ``corrupt(actual_sha256)`` is raised on a mismatch, so what
    the caller made of the chunks is trusted only once this generator is
    exhausted without an error. A stream that cannot be decompressed is
    corrupt too: it is read to its end so that the error names its hash.
    """
    with contextlib.closing(raw):
        reader = HashingReader(raw)
        source = decompressor(reader)
        try:
            for chunk in iter(lambda: source.read(CHUNK), b''):
                yield chunk
        except zstandard.ZstdError:
            reader.drain()
            raise corrupt(reader.sha256) from None
        reader.drain()
    if reader.sha256 != sha256:
        raise corrupt(reader.sha256)


def write_checked(out: typing.BinaryIO, raw: typing.BinaryIO, sha256: str,
                  corrupt: typing.Callable[[str], Exception],
                  progress: typing.Callable[[int, int], None]) -> None:
    """Write a stored artifact's content to ``out``, checked as above."""
    for chunk in checked_chunks(raw, sha256, corrupt):
        out.write(chunk)
        progress(len(chunk), 0)


def file_sha256(fileobj: typing.BinaryIO) -> tuple[str, int]:
    """Hash a readable stream to its end; return (sha256, size)."""
    reader = HashingReader(fileobj)
    reader.drain()
    return reader.sha256, reader.size


class WriteBehind:
    """A writable stream whose writes run in a helper thread.

    For a producer busy with what it makes (reading, hashing and
    compressing a tree): hashing the compressed stream and writing it to
    storage overlap that work. At most ``depth`` writes wait, so memory
    stays flat. The sink's first error is raised by the next write or by
    close(); use it as a context manager so the thread always ends.
    """

    def __init__(self, sink: typing.BinaryIO, depth: int = 16):
        self._sink = sink
        self._queue: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run,
                                        name='osbackup-behind', daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                return
            if self._error is None:
                try:
                    self._sink.write(data)
                except BaseException as exc:
                    # Drained on: a producer blocked on a full queue
                    # sees the error at its next write.
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data) -> int:
        self._raise()
        # A copy: the producer may reuse its buffer once this returns.
        self._queue.put(bytes(data))
        return len(data)

    def flush(self) -> None:
        self._raise()

    def close(self) -> None:
        """Wait until every write is done; raise the sink's error."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()

    def __enter__(self) -> 'WriteBehind':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._thread.is_alive():
            # Failing anyway: end the thread, keep the first error.
            self._queue.put(None)
            self._thread.join()

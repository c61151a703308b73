"""Byte-stream plumbing shared by archives, dumps and storage.

Everything streams: data passes through these wrappers once, in bounded
chunks, so no backup is ever held in memory or copied to a temp file.
"""

import hashlib
import typing

import zstandard

CHUNK = 1 << 20


class HashingWriter:
    """Forward writes to ``sink`` while counting bytes and hashing them."""

    def __init__(self, sink: typing.BinaryIO,
                 on_bytes: typing.Callable[[int], None] | None = None):
        self._sink = sink
        self._hash = hashlib.sha256()
        self._on_bytes = on_bytes
        self.size = 0

    def write(self, data) -> int:
        self._sink.write(data)
        self._hash.update(data)
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


class Decompressor:
    """A readable zstd stream that notices truncation.

    python-zstandard's stream_reader reports a frame cut short as a plain
    end of data; a backup tool must not, so frames are decoded here and
    an input that ends inside a frame raises TruncatedStream.
    """

    def __init__(self, source: typing.BinaryIO):
        self._source = source
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._buffer = bytearray()
        self._in_frame = False
        self._eof = False

    def _fill(self):
        data = self._source.read(CHUNK)
        if not data:
            self._eof = True
            if self._in_frame:
                raise TruncatedStream('compressed stream ends inside a '
                                      'zstd frame (truncated)')
            return
        while data:
            self._in_frame = True
            self._buffer += self._obj.decompress(data)
            if not self._obj.eof:
                return
            self._in_frame = False
            data = self._obj.unused_data
            self._obj = self._dctx.decompressobj()

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buffer) < n):
            self._fill()
        if n < 0 or n >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
        else:
            out = bytes(self._buffer[:n])
            del self._buffer[:n]
        return out

    def close(self) -> None:
        pass


class TruncatedStream(zstandard.ZstdError):
    """The compressed input ended before its last frame did."""


def decompressor(source: typing.BinaryIO) -> Decompressor:
    """Return a readable zstd stream over ``source``."""
    return Decompressor(source)


def file_sha256(fileobj: typing.BinaryIO) -> tuple[str, int]:
    """Hash a readable stream to its end; return (sha256, size)."""
    reader = HashingReader(fileobj)
    reader.drain()
    return reader.sha256, reader.size

"""Reading an archive: its tar stream, its manifest, verify_archive.

The tar parser is its own rather than tarfile's: faster for trees of many
small files, and stricter, as any damage must be found.  _Reader checks
every member read against the manifest; the extractor reads through it.
"""

import hashlib
import json
import os
import re
import struct
import tarfile
import typing
import zlib

import zstandard

from osbackup.archive import common
from osbackup import exception
from osbackup import streams

# A plain global, not common._BLOCK: the parser reads it for every block.
_BLOCK = common._BLOCK
_MAX_MANIFEST = 1 << 30
_UNSAFE_TYPES = {tarfile.LNKTYPE: 'hard link', tarfile.CHRTYPE: 'device',
                 tarfile.BLKTYPE: 'device', tarfile.FIFOTYPE: 'FIFO'}
_PAX_MTIME = re.compile(r'(-?)(\d+)(?:\.(\d{1,9})\d*)?')
_READ_ERRORS = (zstandard.ZstdError, tarfile.TarError, EOFError)
_ZEROS = bytes(_BLOCK)
_MAX_EXTENDED = 1 << 20
# What one hand-over between the threads carries at most.
_BATCH_BYTES = 1 << 20
_BATCH_EVENTS = 256
_PAX_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
_SUPPORTED = frozenset(tarfile.SUPPORTED_TYPES)
# name mode uid gid size mtime chksum type linkname magic version uname
# gname devmajor devminor prefix
_HEADER = struct.Struct('100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x')
_SIGNED = struct.Struct('148b8x356b')


def _base_ok(entry: dict) -> bool:
    """An entry kept in an earlier backup must be a file with its sha256."""
    return 'in' not in entry or (
        isinstance(entry['in'], str) and entry['type'] == 'file' and
        isinstance(entry.get('sha256'), str) and
        isinstance(entry.get('size'), int))


class _Reader:
    """Walk an archive stream, hashing members and finding the manifest.

    A helper thread (_TarStream in streams.Ahead) reads, decompresses and
    parses the tar stream and hashes every file's data; this side sees
    each member followed, if it has data, by views of that data and its
    sha256, so writing files here overlaps all of that work.
    """

    def __init__(self, source, hash_files: bool = True):
        self._ahead = streams.Ahead(_TarStream(source, hash_files).batches())
        self._batch: list = []
        self._next = 0
        # The current member's data events are not consumed yet.
        self._pending = False
        self.current = None
        self.manifest = None
        self.seen: dict[str, dict] = {}

    def close(self) -> None:
        """Stop the helper thread; idempotent."""
        self._ahead.close()

    def _event(self):
        if self._next == len(self._batch):
            self._batch, self._next = next(self._ahead), 0
        event = self._batch[self._next]
        self._next += 1
        return event

    def _data(self) -> typing.Iterator[memoryview]:
        """The current member's data; its sha256 ends up in self._digest.

        The digest is '' when the reader does not hash file data.
        """
        self._pending = False
        while not isinstance(event := self._event(), str):
            yield event
        self._digest = event

    def members(self) -> typing.Iterator[tuple[str, '_Member']]:
        try:
            while True:
                if self._pending:
                    for _piece in self._data():
                        pass
                member = self._event()
                if member is None:
                    break
                self._pending = member.isreg() or member.type not in _SUPPORTED
                name = self.current = member.name
                if name in self.seen or (name == common.MANIFEST_NAME and
                                         self.manifest is not None):
                    raise exception.ArtifactCorrupt(
                        'archive has duplicate member %r' % name)
                if name == common.MANIFEST_NAME:
                    self._read_manifest(member)
                else:
                    yield name, member
            self.current = None
            if self.manifest is None:
                raise exception.ArtifactCorrupt('archive has no manifest')
        finally:
            self.close()

    def _read_manifest(self, member: tarfile.TarInfo) -> None:
        try:
            if not member.isreg() or member.size > _MAX_MANIFEST:
                raise ValueError(member.size)
            manifest = json.loads(b''.join(self._data()))
            if (manifest['format'] != common.FORMAT or
                    not isinstance(manifest['paths'], list) or
                    not all(map(common._canonical, manifest['paths'])) or
                    not all(isinstance(e['path'], str) and e['type'] in
                            common._TYPEFLAGS and _base_ok(e)
                            for e in manifest['entries'])):
                raise ValueError(manifest['format'])
        except (ValueError, TypeError, KeyError):
            raise exception.ArtifactCorrupt(
                'archive manifest is malformed') from None
        self.manifest = manifest

    def record(self, name: str, member: '_Member') -> None:
        kind = ('sparse file' if member.sparse is not None else
                common._TYPES.get(member.type, repr(member.type)))
        if kind == 'file':
            self.copy(name, member)
        elif kind == 'symlink':
            self.seen[name] = {'type': kind, 'target': member.linkname}
        else:
            self.seen[name] = {'type': kind}

    def copy(self, name: str, member: '_Member',
             fd: int | None = None) -> None:
        """Hash a file member's data, writing it to ``fd`` if given."""
        for piece in self._data():
            while fd is not None and piece:
                piece = piece[os.write(fd, piece):]
        got = {'type': 'file', 'size': member.size}
        if self._digest:
            got['sha256'] = self._digest
        self.seen[name] = got

    def check(self) -> None:
        """Compare what was read against the manifest."""
        expected = {e['path']: e for e in self.manifest['entries']}
        if len(expected) != len(self.manifest['entries']):
            raise exception.ArtifactCorrupt('manifest lists a path twice')
        # Files kept in an earlier backup of the chain are not members.
        expected = {k: e for k, e in expected.items() if 'in' not in e}
        for name, got in self.seen.items():
            want = expected.get(name)
            if want is None:
                raise exception.ArtifactCorrupt(
                    'archive member %r is not in its manifest' % name)
            for field in ('type', 'size', 'sha256', 'target'):
                if (field in got or field == 'type') and \
                        got.get(field) != want.get(field):
                    raise exception.ArtifactCorrupt(
                        'archive member %r: %s %r, manifest says %r'
                        % (name, field, got.get(field), want.get(field)))
        missing = sorted(expected.keys() - self.seen.keys())
        if missing:
            raise exception.ArtifactCorrupt(
                'archive lacks member %r of its manifest' % missing[0])

    def corrupt(self, error: Exception) -> exception.ArtifactCorrupt:
        where = ' at member %r' % self.current if self.current else ''
        return exception.ArtifactCorrupt('archive is corrupt%s: %s'
                                         % (where, str(error) or repr(error)))


class _Member:
    """One tar member: the TarInfo attributes archives use, and no more."""

    __slots__ = ('name', 'type', 'mode', 'uid', 'gid', 'size', 'mtime',
                 'linkname', 'uname', 'gname', 'pax_headers', 'sparse')

    def isreg(self) -> bool:
        return self.type in tarfile.REGULAR_TYPES

    def isdir(self) -> bool:
        return self.type == tarfile.DIRTYPE

    def issym(self) -> bool:
        return self.type == tarfile.SYMTYPE


def _text(raw: bytes) -> str:
    return raw.split(b'\0', 1)[0].decode('utf-8', 'surrogateescape')


def _num(raw: bytes) -> int:
    """A numeric header field: octal, or GNU base-256."""
    if raw[0] in (0o200, 0o377):
        n = int.from_bytes(raw[1:], 'big')
        return n - 256 ** (len(raw) - 1) if raw[0] == 0o377 else n
    digits = raw.split(b'\0', 1)[0].strip() or b'0'
    try:
        if not digits.isdigit():
            raise ValueError(digits)
        return int(digits, 8)
    except ValueError:
        raise tarfile.HeaderError('invalid number in header') from None


def _byte_sum(buf: bytes) -> int:
    """sum(buf) of a 512-byte block, ten times faster.

    Adler-32's low half is 1 + the sum of the bytes modulo 65521, exact
    for 256 bytes (at most 65280).
    """
    return ((zlib.adler32(buf[:256]) & 0xFFFF) +
            (zlib.adler32(buf[256:]) & 0xFFFF) - 2)


def _parse_header(buf: bytes) -> tuple[_Member, str]:
    """A 512-byte header as tarfile.TarInfo.frombuf reads it; and its prefix.

    Stricter than frombuf: numbers must be plain octal digits.
    """
    (name, mode, uid, gid, size, mtime, chksum, kind, linkname, _magic,
     _version, uname, gname, _major, _minor, prefix) = _HEADER.unpack(buf)
    want = _num(chksum)
    if (_byte_sum(buf) - sum(chksum) + 256 != want and
            sum(_SIGNED.unpack(buf)) + 256 != want):
        raise tarfile.HeaderError('bad header checksum')
    member = _Member()
    member.name = _text(name)
    member.type = kind
    member.mode = _num(mode)
    member.uid = _num(uid)
    member.gid = _num(gid)
    member.size = _num(size)
    member.mtime = _num(mtime)
    member.linkname = _text(linkname)
    member.uname = _text(uname)
    member.gname = _text(gname)
    member.pax_headers = {}
    member.sparse = None
    if kind == tarfile.GNUTYPE_SPARSE:
        member.sparse = []
    if kind == tarfile.AREGTYPE and member.name.endswith('/'):
        member.type = tarfile.DIRTYPE
    if member.type == tarfile.DIRTYPE:
        member.name = member.name.rstrip('/')
    return member, _text(prefix)


def _pax_records(data: bytes) -> dict[str, str]:
    """The ``length key=value\\n`` records of a pax header, strictly."""
    records, pos = {}, 0
    while pos < len(data) and data[pos]:
        space = data.find(b' ', pos, pos + 21)
        length = data[pos:space]
        if space < 0 or not length.isdigit():
            raise tarfile.HeaderError('malformed pax header')
        # Past the space and a key: every record moves pos on.
        end = pos + int(length)
        if not space + 2 < end <= len(data) or data[end - 1] != 0x0a:
            raise tarfile.HeaderError('malformed pax header')
        key, eq, value = data[space + 1:end - 1].partition(b'=')
        if not eq or not key:
            raise tarfile.HeaderError('malformed pax header')
        records[key.decode('utf-8', 'surrogateescape')] = value.decode(
            'utf-8', 'surrogateescape')
        pos = end
    return records


def _apply_pax(member: _Member, pax: dict[str, str]) -> None:
    """Apply pax records to ``member`` as tarfile does."""
    try:
        for key, value in pax.items():
            if key == 'path':
                member.name = value.rstrip('/')
            elif key == 'linkpath':
                member.linkname = value
            elif key in ('uname', 'gname'):
                setattr(member, key, value)
            elif key in ('size', 'uid', 'gid'):
                if not value.isdigit():
                    raise ValueError(value)
                setattr(member, key, int(value))
            elif key == 'mtime':
                if not _PAX_MTIME.fullmatch(value):
                    raise ValueError(value)
                member.mtime = float(value)
            elif key.startswith('GNU.sparse.'):
                member.sparse = []
    except ValueError:
        raise tarfile.HeaderError('invalid pax %s' % key) from None
    member.pax_headers = pax


class _TarStream:
    """The tar parser of _Reader, run in its helper thread.

    Faster than tarfile in stream mode and stricter: pax and ustar headers
    (and GNU long names) only, and a bad header or a stream ending early
    is damage, never the end of the archive.  batches() yields lists of
    events: a _Member; for a member with data, views of it (never copied)
    and then its sha256 as a hex str ('' without ``hash_files``); None at
    the proper end of the archive, after draining the stream (so zstd
    checks its checksum).
    """

    def __init__(self, source, hash_files: bool = True):
        self._hash = hash_files
        # Three stages run at once: the caller writes files while this
        # thread parses; the third takes whichever work then costs most.
        # Hashing every file: reading and decompressing (about 25% off a
        # deep verify).  Otherwise: reading and hashing the compressed
        # stream (about 10% off a restore).
        self._read_ahead = None
        if hash_files:
            self._pieces_in = streams.Ahead(streams.inflate(source), depth=8)
        else:
            self._read_ahead = streams.ReadAhead(source)
            self._pieces_in = streams.inflate(self._read_ahead)
        self._chunk = b''
        self._view = memoryview(self._chunk)
        self._pos = 0
        self._global: dict[str, str] = {}

    def _fill(self) -> bool:
        """Move on to the next decompressed piece; False at the end."""
        self._chunk = next(self._pieces_in, b'')
        self._view = memoryview(self._chunk)
        self._pos = 0
        return bool(self._chunk)

    def _take(self, n: int) -> bytes:
        """The next ``n`` bytes of the tar stream."""
        pos = self._pos
        if pos + n <= len(self._chunk):
            self._pos = pos + n
            return self._chunk[pos:pos + n]
        return b''.join(bytes(p) for p in self._pieces(n))

    def _pieces(self, n: int) -> typing.Iterator[memoryview]:
        """The next ``n`` bytes as views, without copying them."""
        while n:
            avail = len(self._chunk) - self._pos
            if not avail:
                if not self._fill():
                    raise exception.ArtifactCorrupt('archive is truncated')
                continue
            if avail > n:
                avail = n
            yield self._view[self._pos:self._pos + avail]
            self._pos += avail
            n -= avail

    def _skip(self, n: int) -> None:
        for _piece in self._pieces(n):
            pass

    def _extended(self, size: int) -> bytes:
        """The data of a pax or GNU long-name header."""
        if size > _MAX_EXTENDED:
            raise tarfile.HeaderError('extended header of %d bytes' % size)
        data = self._take(size)
        self._skip(-size % _BLOCK)
        return data

    def _member(self) -> '_Member | None':
        """The next member, its extended headers applied; None at the end."""
        pax: dict[str, str] = {}
        longname = longlink = None
        while True:
            buf = self._take(_BLOCK)
            if buf == _ZEROS:
                if pax or longname is not None or longlink is not None:
                    raise tarfile.HeaderError('extended header without a '
                                              'member')
                return None
            member, prefix = _parse_header(buf)
            if member.type in _PAX_TYPES:
                records = _pax_records(self._extended(member.size))
                (self._global if member.type == tarfile.XGLTYPE
                 else pax).update(records)
                continue
            if member.type == tarfile.GNUTYPE_LONGNAME:
                longname = _text(self._extended(member.size))
                continue
            if member.type == tarfile.GNUTYPE_LONGLINK:
                longlink = _text(self._extended(member.size))
                continue
            # As tarfile: ustar prefix, then GNU long names, then pax.
            if prefix and member.type not in tarfile.GNU_TYPES:
                member.name = prefix + '/' + member.name
            if longname is not None:
                member.name = longname
                if member.type == tarfile.DIRTYPE:
                    member.name = member.name.removesuffix('/')
            if longlink is not None:
                member.linkname = longlink
            if self._global or pax:
                _apply_pax(member, {**self._global, **pax})
            if member.size < 0:
                raise tarfile.HeaderError('negative size')
            return member

    def batches(self) -> typing.Iterator[list]:
        try:
            yield from self._batches()
        finally:
            self._pieces_in.close()
            if self._read_ahead is not None:
                self._read_ahead.close()

    def _batches(self) -> typing.Iterator[list]:
        batch: list = []
        size = 0
        while (member := self._member()) is not None:
            batch.append(member)
            if member.isreg() or member.type not in _SUPPORTED:
                digest = hashlib.sha256() if self._hash else None
                for piece in self._pieces(member.size):
                    if digest is not None:
                        digest.update(piece)
                    batch.append(piece)
                    size += len(piece)
                    if size >= _BATCH_BYTES:
                        yield batch
                        batch, size = [], 0
                batch.append(digest.hexdigest() if digest else '')
                self._skip(-member.size % _BLOCK)
            if len(batch) >= _BATCH_EVENTS:
                yield batch
                batch, size = [], 0
        # The second end-of-archive block, then the rest.
        self._take(_BLOCK)
        while self._fill():
            pass
        batch.append(None)
        yield batch


def _check_member(name: str, member: '_Member') -> None:
    """Refuse a member as it is read, before anything is written for it."""
    kind = ('sparse file' if member.sparse is not None else
            common._TYPES.get(member.type) or _UNSAFE_TYPES.get(member.type) or
            'unsupported type %r' % member.type)
    why = common.entry_problem(name, kind, member.linkname)
    if why is not None:
        raise common._unsafe(name, why)


def verify_archive(source: typing.BinaryIO) -> dict:
    """Read a whole archive and check it against its manifest.

    Raises ArtifactCorrupt on any damage and UnsafeArchive on what a
    restore would refuse; returns the manifest.
    """
    reader = _Reader(source)
    try:
        for name, member in reader.members():
            _check_member(name, member)
            reader.record(name, member)
    except _READ_ERRORS as e:
        raise reader.corrupt(e) from e
    finally:
        reader.close()
    reader.check()
    common.check_manifest(reader.manifest)
    return reader.manifest

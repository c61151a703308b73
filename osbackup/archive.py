"""Streaming tar archives of service file sets, and their safe restore.

An archive is a zstd-compressed POSIX pax tar stream of directories,
regular files and symlinks relative to a node root, ending with a JSON
manifest member that lists every entry and each file's sha256.

An incremental archive is written against the manifest of an earlier one
(its base): a regular file whose inode, size, mtime and ctime are all
unchanged is not stored again; its manifest entry says in which earlier
backup (``in``) the bytes are. Directories, symlinks and every changed file
are stored as usual, so the manifest alone describes the whole tree of that
moment, and a file deleted since the base is simply absent from it.  Both
the writer and the reader handle the tar format themselves, as tarfile is
too slow for trees of many small files.  Extraction runs as root, so it
applies its own member rule rather than tarfile's (entry_problem and
tree_problem, which the writer applies too): links are restored as links
whatever they point to, like tarfile's ``tar`` filter, but nothing is ever
written through one or outside the staging directories.

Restores read an archive through a check of its whole sha256 against the
catalogue, which proves every byte of it; they pass ``hash_files=False``
so that file data is not hashed a second time (about 1 s of CPU per GB).
Without that proof (``backup verify --deep``), every file's sha256 is
checked against the manifest.
"""

import collections
import dataclasses
import errno
import grp
import hashlib
import json
import os
import posixpath
import pwd
import re
import stat
import struct
import tarfile
import time
import typing
import zlib

import zstandard

from osbackup import exception
from osbackup import streams

MANIFEST_NAME = '.osbackup-manifest.json'
FORMAT = 1

CHUNK = streams.CHUNK
_BLOCK = tarfile.BLOCKSIZE
_MAX_MANIFEST = 1 << 30
_USTAR = struct.Struct('100s8s8s8s12s12s8sc100s8s32s32s183x')
_TYPEFLAGS = {'file': b'0', 'dir': b'5', 'symlink': b'2'}
_TYPES = {tarfile.REGTYPE: 'file', tarfile.AREGTYPE: 'file',
          tarfile.DIRTYPE: 'dir', tarfile.SYMTYPE: 'symlink'}
_UNSAFE_TYPES = {tarfile.LNKTYPE: 'hard link', tarfile.CHRTYPE: 'device',
                 tarfile.BLKTYPE: 'device', tarfile.FIFOTYPE: 'FIFO'}
_PAX_MTIME = re.compile(r'(-?)(\d+)(?:\.(\d{1,9})\d*)?')
_READ_ERRORS = (zstandard.ZstdError, tarfile.TarError, EOFError)
# O_NONBLOCK: a file swapped for a FIFO after scandir must not hang us.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_WRITE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                os.O_CLOEXEC)
_LOOKUPS = {'uid': lambda k: pwd.getpwuid(k).pw_name,
            'gid': lambda k: grp.getgrgid(k).gr_name,
            'uname': lambda k: pwd.getpwnam(k).pw_uid,
            'gname': lambda k: grp.getgrnam(k).gr_gid}


@dataclasses.dataclass
class ArchiveStats:
    """Outcome of write_archive: the tree's totals and what was stored."""

    files: int
    bytes: int
    warnings: list[str]
    manifest: dict
    stored_files: int = 0
    stored_bytes: int = 0
    #: The manifest as stored (JSON), for keeping it without a re-encode.
    manifest_json: bytes = b''


class _Accounts(dict):
    """User and group lookups cached for one archive; None if unknown."""

    def __missing__(self, key):
        try:
            self[key] = _LOOKUPS[key[0]](key[1])
        except KeyError:
            self[key] = None
        return self[key]


def _canonical(name: str) -> bool:
    return (isinstance(name, str) and name != '' and '\0' not in name and
            all(p not in ('', '.', '..') for p in name.split('/')))


def _under(name: str, top: str) -> bool:
    return name == top or name.startswith(top + '/')


def _special(mode: int) -> str:
    return ('FIFO' if stat.S_ISFIFO(mode) else
            'socket' if stat.S_ISSOCK(mode) else 'device')


# What a restore accepts.  This is the one statement of it: the writer
# applies it when a backup is taken (write_archive), verify_archive and the
# extractor when an archive is checked or restored, so a backup that
# succeeds is one that restores.
#
# * Entries are directories, regular files and symbolic links with
#   canonical relative names, each under one of the manifest's top paths.
#   Hard links, devices, FIFOs, sockets and sparse files are not entries:
#   the writer stores a hard link as a file and skips the others with a
#   warning.
# * A top path is a directory or a regular file, never a link: a restore
#   replaces the top path itself.
# * A symbolic link is restored as a link, whatever it points to
#   (absolute, outside its tree, dangling); nothing ever follows it.
#   Nothing may be named below a link, as it could only be written
#   through the link.
RESTORED_KINDS = ('dir', 'file', 'symlink')


def entry_problem(name: str, kind: str, target: str = '') -> str | None:
    """Why a restore refuses an entry of this name and kind, or None."""
    if '\0' in name or '\0' in target:
        return 'NUL in name'
    if name.startswith('/'):
        return 'absolute name'
    if '..' in name.split('/'):
        return '".." in name'
    if not _canonical(name):
        return 'malformed name'
    if kind not in RESTORED_KINDS:
        return kind
    if kind == 'symlink' and not target:
        return 'empty symlink'
    return None


def tree_problem(entries: typing.Iterable[dict],
                 tops: typing.Sequence[str]) -> tuple[str, str] | None:
    """(name, why) of the first manifest entry a restore refuses, or None.

    Checks every entry with entry_problem, and where each lies: under a
    top path, not a link at a top, not below a link.
    """
    entries = list(entries)
    links = {e['path'] for e in entries if e['type'] == 'symlink'}
    for entry in entries:
        name = entry['path']
        why = entry_problem(name, entry['type'], entry.get('target', ''))
        if why is not None:
            return name, why
        if not any(_under(name, top) for top in tops):
            return name, 'outside the archived paths'
        if name in links and name in tops:
            return name, 'a top path is a symlink'
        parent = name
        while links and '/' in parent:
            parent = parent.rpartition('/')[0]
            if parent in links:
                return name, 'parent %r is a symlink' % parent
    return None


def _ustar(fields: list) -> bytes:
    buf = _USTAR.pack(*fields)
    return b'%s%06o\0 %s' % (buf[:148], sum(buf), buf[156:])


def _pax_record(key: str, value: bytes) -> bytes:
    size = len(key) + len(value) + 3
    n = p = 0
    while True:
        # The length prefix counts its own digits.
        n = size + len(str(p))
        if n == p:
            return b'%d %s=%s\n' % (n, key.encode(), value)
        p = n


def _header(name: str, kind: str, mode: int, uid: int, gid: int,
            size: int, mtime_ns: int, target: str = '', uname: str = '',
            gname: str = '') -> bytes:
    """Build a pax tar header like TarInfo.tobuf, at a fraction of the cost.

    A pax mtime record keeps nanoseconds; names that are too long or not
    ASCII go to pax records too (undecodable bytes as they are, which
    tarfile and GNU tar both read back unchanged).
    """
    pax = {}

    def text(key, value, width):
        raw = value.encode('utf-8', 'surrogateescape')
        if len(raw) > width or not value.isascii():
            pax[key] = raw
        return raw[:width]

    def num(key, value, width):
        if 0 <= value < 8 ** (width - 1):
            return b'%0*o' % (width - 1, value)
        pax[key] = b'%d' % value
        return b'0'

    sec, nsec = divmod(abs(mtime_ns), 10 ** 9)
    fields = [text('path', name + '/' * (kind == 'dir'), 100),
              b'%07o' % mode, num('uid', uid, 8), num('gid', gid, 8),
              num('size', size, 12),
              num('mtime', sec, 12) if mtime_ns >= 0 else b'0', b' ' * 8,
              _TYPEFLAGS[kind], text('linkpath', target, 100),
              b'ustar\x0000', text('uname', uname, 32),
              text('gname', gname, 32)]
    if nsec or mtime_ns < 0:
        pax['mtime'] = b'%s%d.%09d' % (b'-' * (mtime_ns < 0), sec, nsec)
    if not pax:
        return _ustar(fields)
    records = b''.join(_pax_record(k, v) for k, v in pax.items())
    return (_ustar([b'././@PaxHeader', b'0000644', b'0', b'0',
                    b'%011o' % len(records), b'0', b' ' * 8, b'x', b'',
                    b'ustar\x0000', b'', b'']) +
            records + bytes(-len(records) % _BLOCK) + _ustar(fields))


def _entry(name: str, kind: str, st: os.stat_result,
           target: str = '') -> dict:
    """A manifest entry; files also keep what incremental backups compare."""
    entry = {'path': name, 'type': kind, 'mode': stat.S_IMODE(st.st_mode),
             'uid': st.st_uid, 'gid': st.st_gid,
             'mtime': st.st_mtime_ns / 1e9}
    if kind == 'symlink':
        entry['target'] = target
    elif kind == 'file':
        entry.update(ino=st.st_ino, mtime_ns=st.st_mtime_ns,
                     ctime_ns=st.st_ctime_ns)
    return entry


class _Writer:
    """Emit tar members into a compressor and collect the manifest."""

    def __init__(self, out, progress, previous=None, base_ref=None):
        self._out = out
        self._progress = progress
        #: path -> entry of the base manifest, for incremental archives.
        self._previous = previous
        self._base_ref = base_ref
        self.carried = 0
        self.carried_bytes = 0
        self._pending = [0, 0]
        self._buf = memoryview(bytearray(CHUNK))
        self._accounts = _Accounts()
        self.offset = 0
        self.files = 0
        self.bytes = 0
        self.entries: list[dict] = []
        self.warnings: list[str] = []

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self.offset += len(data)

    def _report(self, nbytes: int, nfiles: int = 0) -> None:
        self._pending[0] += nbytes
        self._pending[1] += nfiles
        # Batch callbacks: small files cost one call per chunk of data.
        if self._pending[0] >= CHUNK:
            self.flush_progress()

    def flush_progress(self) -> None:
        if self._progress is not None and any(self._pending):
            self._progress(*self._pending)
        self._pending = [0, 0]

    def header(self, name: str, st: os.stat_result, kind: str,
               size: int = 0, target: str = '') -> None:
        mode = stat.S_IMODE(st.st_mode)
        self._emit(_header(name, kind, mode, st.st_uid, st.st_gid, size,
                           st.st_mtime_ns, target,
                           self._accounts['uid', st.st_uid] or '',
                           self._accounts['gid', st.st_gid] or ''))
        self.entries.append(_entry(name, kind, st, target))

    def carry(self, name: str, st: os.stat_result) -> bool:
        """Record an unchanged file of the base without storing it again.

        Unchanged means the same inode, size, mtime and ctime: a write
        changes mtime and ctime, and ctime cannot be set back by anyone.
        """
        prev = self._previous.get(name)
        if (prev is None or prev.get('type') != 'file' or
                prev.get('ino') != st.st_ino or
                prev.get('size') != st.st_size or
                prev.get('mtime_ns') != st.st_mtime_ns or
                prev.get('ctime_ns') != st.st_ctime_ns or
                not stat.S_ISREG(st.st_mode)):
            return False
        # Mode, owner and mtime cannot change without moving ctime: the
        # base's entry still describes the file.
        entry = dict(prev)
        entry.setdefault('in', self._base_ref)
        self.entries.append(entry)
        self.carried += 1
        self.carried_bytes += st.st_size
        self._report(0, 1)
        return True

    def add_regular(self, name: str, path: str, entry=None) -> bool:
        """Store a regular file, or carry it when unchanged since the base.

        ``entry`` is the file's DirEntry, whose lstat scandir may already
        have cached.
        """
        if self._previous is not None:
            try:
                st = (entry.stat(follow_symlinks=False) if entry is not None
                      else os.lstat(path))
            except FileNotFoundError:
                self.warnings.append('%s: vanished before it was read'
                                     % name)
                return False
            if self.carry(name, st):
                return True
        return self.add_file(name, path)

    def add_file(self, name: str, path: str) -> bool:
        try:
            try:
                fd = os.open(path, _READ_FLAGS | os.O_NOATIME)
            except PermissionError:
                # O_NOATIME needs ownership or CAP_FOWNER.
                fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            self.warnings.append('%s: vanished before it was read' % name)
            return False
        except OSError as e:
            self.warnings.append('%s: not read: %s' % (name, e.strerror))
            return False
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self.warnings.append('%s: no longer a regular file' % name)
                return False
            self._copy(name, fd, st)
            return True
        finally:
            os.close(fd)

    def _copy(self, name: str, fd: int, st: os.stat_result) -> None:
        size = left = st.st_size
        self.header(name, st, 'file', size)
        digest, buf, out = hashlib.sha256(), self._buf, self._out
        while left:
            n = os.readv(fd, [buf[:left] if left < CHUNK else buf])
            if not n:
                break
            data = buf[:n] if n < CHUNK else buf
            digest.update(data)
            out.write(data)
            left -= n
            self._report(n)
        changed = left > 0
        while left:
            # It shrank: keep the header's promise with zeros.
            zeros = bytes(min(left, CHUNK))
            digest.update(zeros)
            out.write(zeros)
            left -= len(zeros)
            self._report(len(zeros))
        self.offset += size
        self._emit(bytes(-size % _BLOCK))
        after = os.fstat(fd)
        if (changed or after.st_size != size or
                after.st_mtime_ns != st.st_mtime_ns):
            self.warnings.append('%s: changed while being read' % name)
        self.entries[-1].update(size=size, sha256=digest.hexdigest())
        self.files += 1
        self.bytes += size
        self._report(0, 1)

    def add_tree(self, top: str, path: str, dev: int,
                 excludes: set[str]) -> None:
        # A stack of sorted listings gives tar's depth-first order.
        stack = [(top, self._listdir(top, path))]
        while stack:
            parent, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            name = parent + '/' + entry.name
            if name in excludes:
                continue
            try:
                if entry.is_file(follow_symlinks=False):
                    self.add_regular(name, entry.path, entry)
                    continue
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode) and st.st_dev != dev:
                    self.warnings.append('%s: on another filesystem; '
                                         'skipped' % name)
                elif stat.S_ISDIR(st.st_mode):
                    self.header(name, st, 'dir')
                    stack.append((name, self._listdir(name, entry.path)))
                elif stat.S_ISLNK(st.st_mode):
                    # Stored as a link whatever it points to, never
                    # followed (see entry_problem).
                    link = os.readlink(entry.path)
                    why = entry_problem(name, 'symlink', link)
                    if why is None:
                        self.header(name, st, 'symlink', target=link)
                    else:
                        self.warnings.append('%s: %s skipped: a restore '
                                             'would refuse it' % (name, why))
                else:
                    self.warnings.append('%s: %s skipped'
                                         % (name, _special(st.st_mode)))
            except FileNotFoundError:
                self.warnings.append('%s: vanished before it was read' % name)

    def _listdir(self, name: str, path: str) -> typing.Iterator:
        try:
            with os.scandir(path) as it:
                return iter(sorted(it, key=lambda e: e.name))
        except OSError as e:
            self.warnings.append('%s: not listed: %s' % (name, e.strerror))
            return iter(())

    def finish(self, manifest: dict) -> None:
        data = self.manifest_json = json.dumps(
            manifest, separators=(',', ':')).encode()
        self._emit(_header(MANIFEST_NAME, 'file', 0o600, 0, 0, len(data),
                           time.time_ns()))
        self._emit(data + bytes(-len(data) % _BLOCK))
        self._emit(bytes(2 * _BLOCK))
        self._emit(bytes(-self.offset % tarfile.RECORDSIZE))
        self.flush_progress()


def _relative(paths: typing.Iterable[str], what: str) -> list[str]:
    out = []
    for path in paths:
        if not path.startswith('/'):
            raise exception.InvalidInput('%s path %r is not absolute'
                                         % (what, path))
        rel = posixpath.normpath(path).lstrip('/')
        if not rel:
            raise exception.InvalidInput('cannot archive the root itself')
        if rel not in out:
            out.append(rel)
    return out


def write_archive(sink: typing.BinaryIO, root: str, paths: list[str],
                  excludes: typing.Sequence[str] = (), level: int = 3,
                  threads: int = 0,
                  progress: typing.Callable[[int, int], None] | None = None,
                  base: dict | None = None, base_ref: str | None = None
                  ) -> ArchiveStats:
    """Stream the trees at ``paths`` under ``root`` into ``sink``.

    Missing paths are skipped; what cannot be stored faithfully (special
    files, other filesystems, files changing) becomes a warning.  Errors
    writing ``sink`` propagate and leave the stream unfinished.  With
    ``base`` (the manifest of an earlier archive, stored as backup
    ``base_ref``) the archive is incremental: see the module docstring.
    """
    tops = _relative(paths, 'archive')
    skip = set(_relative(excludes, 'exclude'))
    # Nested tops would store entries twice.
    tops = [t for t in tops if not any(_under(t, o) for o in tops if o != t)
            and not any(_under(t, x) for x in skip)]
    out = streams.compressor(sink, level, threads)
    previous = None
    if base is not None:
        previous = {e['path']: e for e in base['entries']}
    writer = _Writer(out, progress, previous, base_ref)
    stored = []
    for top in tops:
        path = os.path.join(root, top)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            writer.header(top, st, 'dir')
            writer.add_tree(top, path, st.st_dev, skip)
        elif stat.S_ISLNK(st.st_mode):
            # A restore replaces a top path itself: see RESTORED_KINDS.
            writer.warnings.append('%s: symlink skipped: a top path must be '
                                   'a directory or a file; name the path it '
                                   'points to instead' % top)
            continue
        elif not stat.S_ISREG(st.st_mode):
            writer.warnings.append('%s: %s skipped'
                                   % (top, _special(st.st_mode)))
            continue
        elif not writer.add_regular(top, path):
            continue
        stored.append(top)
    manifest = {'format': FORMAT, 'paths': stored, 'excludes': sorted(skip),
                'entries': writer.entries}
    if base is not None:
        manifest['base'] = base_ref
    # The restore's rule, checked while the backup can still fail: the
    # stream is left unfinished, so nothing unrestorable is committed.
    check_manifest(manifest, 'the backup would not restore: ')
    writer.finish(manifest)
    out.close()
    return ArchiveStats(files=writer.files + writer.carried,
                        bytes=writer.bytes + writer.carried_bytes,
                        warnings=writer.warnings, manifest=manifest,
                        stored_files=writer.files, stored_bytes=writer.bytes,
                        manifest_json=writer.manifest_json)


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
                if name in self.seen or (name == MANIFEST_NAME and
                                         self.manifest is not None):
                    raise exception.ArtifactCorrupt(
                        'archive has duplicate member %r' % name)
                if name == MANIFEST_NAME:
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
            if (manifest['format'] != FORMAT or
                    not isinstance(manifest['paths'], list) or
                    not all(map(_canonical, manifest['paths'])) or
                    not all(isinstance(e['path'], str) and e['type'] in
                            _TYPEFLAGS and _base_ok(e)
                            for e in manifest['entries'])):
                raise ValueError(manifest['format'])
        except (ValueError, TypeError, KeyError):
            raise exception.ArtifactCorrupt(
                'archive manifest is malformed') from None
        self.manifest = manifest

    def record(self, name: str, member: '_Member') -> None:
        kind = ('sparse file' if member.sparse is not None else
                _TYPES.get(member.type, repr(member.type)))
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


def _unsafe(name: str, why: str) -> exception.UnsafeArchive:
    return exception.UnsafeArchive('unsafe archive member %r: %s'
                                   % (name, why), member=name)


def check_manifest(manifest: dict, context: str = '') -> None:
    """Raise UnsafeArchive if a restore would refuse an entry (tree_problem).

    ``context`` starts the message (the backup side says it would not
    restore).
    """
    problem = tree_problem(manifest['entries'], manifest['paths'])
    if problem is not None:
        error = _unsafe(*problem)
        error.message = context + error.message
        raise error


def _check_member(name: str, member: '_Member') -> None:
    """Refuse a member as it is read, before anything is written for it."""
    kind = ('sparse file' if member.sparse is not None else
            _TYPES.get(member.type) or _UNSAFE_TYPES.get(member.type) or
            'unsupported type %r' % member.type)
    why = entry_problem(name, kind, member.linkname)
    if why is not None:
        raise _unsafe(name, why)


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
    check_manifest(reader.manifest)
    return reader.manifest


def _mtime_ns(member: tarfile.TarInfo) -> int:
    match = _PAX_MTIME.fullmatch(member.pax_headers.get('mtime', ''))
    if not match:
        return round(member.mtime * 10 ** 9)
    sign, sec, frac = match.groups()
    return (-1 if sign else 1) * (int(sec) * 10 ** 9 +
                                  int((frac or '').ljust(9, '0')))


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Directory descriptors kept open; tar order returns to recent ones.
_OPEN_DIRS = 64


class _Extractor:
    """Create members in staging directories without following links.

    Every name is resolved from its staging directory one component at a
    time with O_NOFOLLOW (openat through ``dir_fd``), and every create
    fails on an existing name, so nothing is written through a link,
    whether the archive or anyone else put it there.  Links themselves
    are made last (seal), after every file and every check, as GNU tar
    delays them: while data is written, none exists to be followed.
    """

    def __init__(self, targets: dict[str, str]):
        for prefix, staging in targets.items():
            if not _canonical(prefix) or not os.path.isabs(staging):
                raise exception.InvalidInput(
                    'bad restore target %r -> %r' % (prefix, staging))
            if any(_under(prefix, o) for o in targets if o != prefix):
                raise exception.InvalidInput(
                    'restore target %r overlaps another' % prefix)
        self.targets = targets
        self._as_root = os.geteuid() == 0
        self._accounts = _Accounts()
        # (prefix, path below it, member) of directories and of links.
        self._dirs: list[tuple[str, str, _Member]] = []
        self._links: list[tuple[str, str, _Member]] = []
        self._fds: collections.OrderedDict[tuple[str, str], int] = (
            collections.OrderedDict())

    def close(self) -> None:
        """Close the directories held open; idempotent."""
        while self._fds:
            os.close(self._fds.popitem()[1])

    def prefix(self, name: str) -> str | None:
        # Targets do not overlap: the first ancestor found is the one.
        while name not in self.targets:
            name = name.rpartition('/')[0]
            if not name:
                return None
        return name

    def _dir_fd(self, prefix: str, rel: str) -> int:
        """Directory ``rel`` of a staging tree, reached without links."""
        # Up to the nearest directory held open, then down from it.
        below = []
        while (fd := self._fds.get((prefix, rel))) is None and rel:
            rel, _, tail = rel.rpartition('/')
            below.append(tail)
        if fd is None:
            fd = self._hold((prefix, ''), os.open(self.targets[prefix],
                                                  _DIR_FLAGS))
        else:
            self._fds.move_to_end((prefix, rel))
        for tail in reversed(below):
            rel = rel + '/' + tail if rel else tail
            fd = self._hold((prefix, rel),
                            os.open(tail, _DIR_FLAGS, dir_fd=fd))
        return fd

    def _hold(self, key: tuple[str, str], fd: int) -> int:
        self._fds[key] = fd
        if len(self._fds) > _OPEN_DIRS:
            # The oldest: never the one just used to open ``fd``.
            os.close(self._fds.popitem(last=False)[1])
        return fd

    def _parent(self, name: str, prefix: str,
                seen: dict) -> tuple[int, str]:
        """The directory that holds member ``name``, and its last name."""
        head, _, tail = name[len(prefix) + 1:].rpartition('/')
        try:
            return self._dir_fd(prefix, head), tail
        except OSError as e:
            parent = name
            while parent != prefix:
                parent = parent.rpartition('/')[0]
                if seen.get(parent, {}).get('type') == 'symlink':
                    raise _unsafe(name, 'parent %r is a symlink'
                                  % parent) from None
            if isinstance(e, FileNotFoundError):
                raise _unsafe(name, 'parent directory missing') from None
            if e.errno in (errno.ENOTDIR, errno.ELOOP):
                raise _unsafe(name, 'a parent in staging is not a '
                              'directory') from None
            raise

    def _apply(self, target, member: _Member, dir_fd=None) -> None:
        """Owner, mode and mtime of an fd; of link ``target`` in dir_fd."""
        link = {} if dir_fd is None else {'dir_fd': dir_fd,
                                          'follow_symlinks': False}
        if self._as_root:
            # Names first: a rebuilt node may number its users anew.
            uid = self._accounts['uname', member.uname]
            gid = self._accounts['gname', member.gname]
            os.chown(target, member.uid if uid is None else uid,
                     member.gid if gid is None else gid, **link)
        if not link:
            # After chown, which clears setuid and setgid.
            os.chmod(target, member.mode & 0o7777)
        mtime = _mtime_ns(member)
        os.utime(target, ns=(mtime, mtime), **link)

    def extract(self, reader: _Reader, name: str, member: _Member,
                prefix: str) -> None:
        if not member.isreg():
            reader.record(name, member)
        try:
            if name == prefix:
                self._top(reader, name, member)
                return
            fd, tail = self._parent(name, prefix, reader.seen)
            rel = name[len(prefix) + 1:]
            if member.isdir():
                os.mkdir(tail, 0o700, dir_fd=fd)
                self._dirs.append((prefix, rel, member))
            elif member.issym():
                self._links.append((prefix, rel, member))
            else:
                self._write(reader, name, member,
                            os.open(tail, _WRITE_FLAGS, 0o600, dir_fd=fd))
        except FileExistsError:
            raise _unsafe(name, 'already exists in staging') from None

    def _top(self, reader: _Reader, name: str, member: _Member) -> None:
        # The staging path's own directory is the live tree's parent,
        # which the restore trusts.
        path = self.targets[name]
        if member.isdir():
            if not os.path.lexists(path):
                os.mkdir(path, 0o700)
            elif not stat.S_ISDIR(os.lstat(path).st_mode):
                raise exception.InvalidInput(
                    'staging path %r is not a directory' % path)
            self._dirs.append((name, '', member))
        elif member.issym():
            raise _unsafe(name, 'a top path is a symlink')
        else:
            self._write(reader, name, member,
                        os.open(path, _WRITE_FLAGS, 0o600))

    def _write(self, reader: _Reader, name: str, member: _Member,
               fd: int) -> None:
        try:
            reader.copy(name, member, fd)
            self._apply(fd, member)
        finally:
            os.close(fd)

    def seal(self) -> None:
        """Make the links, then give directories owners, modes and mtimes.

        Only after every member was written and checked.
        """
        for prefix, rel, member in self._links:
            head, _, tail = rel.rpartition('/')
            fd = self._dir_fd(prefix, head)
            try:
                os.symlink(member.linkname, tail, dir_fd=fd)
            except FileExistsError:
                raise _unsafe(prefix + '/' + rel,
                              'already exists in staging') from None
            self._apply(tail, member, dir_fd=fd)
        # Deepest first: a parent's final mode may bar access below it.
        for prefix, rel, member in sorted(self._dirs,
                                          key=lambda d: -len(d[1])):
            self._apply(self._dir_fd(prefix, rel), member)
        self.close()


def _unpack(reader: _Reader, extractor: _Extractor,
            take: typing.Container[str] | None = None) -> None:
    """Read one archive whole, extracting what lies under the targets.

    With ``take``, only the regular files it names are extracted; every
    other member is still read, hashed and checked.
    """
    try:
        for name, member in reader.members():
            _check_member(name, member)
            prefix = extractor.prefix(name)
            if prefix is None or take is not None and not (
                    name in take and member.isreg()):
                reader.record(name, member)
            else:
                extractor.extract(reader, name, member, prefix)
    except _READ_ERRORS as e:
        raise reader.corrupt(e) from e
    finally:
        reader.close()


def extract_archive(source: typing.BinaryIO, targets: dict[str, str],
                    hash_files: bool = True) -> dict:
    """Restore the members under each prefix in ``targets`` to its path.

    ``targets`` maps an archived top path such as ``etc/nova`` to a staging
    directory; other members are only verified.  An unsafe member rejects
    the whole archive with UnsafeArchive, damage raises ArtifactCorrupt;
    the caller then removes the staging directories.  Returns the manifest.
    ``hash_files=False`` skips the per-file sha256: only for a caller that
    checks the sha256 of the whole stream against a trusted record before
    it uses what was staged (types, sizes and links are still checked).
    """
    extractor = _Extractor(targets)
    try:
        reader = _Reader(source, hash_files)
        _unpack(reader, extractor)
        reader.check()
        check_manifest(reader.manifest)
        extractor.seal()
    finally:
        extractor.close()
    return reader.manifest


def _chain_needs(manifest: dict, extractor: '_Extractor') -> dict:
    """{backup ref: {name: entry}} of the files to take from each base."""
    needs: dict[str, dict] = {}
    for entry in manifest['entries']:
        if 'in' in entry and extractor.prefix(entry['path']) is not None:
            needs.setdefault(entry['in'], {})[entry['path']] = entry
    return needs


def extract_chain(source: typing.BinaryIO, targets: dict[str, str],
                  open_base: typing.Callable[
                      [str], typing.ContextManager[typing.BinaryIO]],
                  hash_files: bool = True) -> dict:
    """Restore an incremental archive, taking unchanged files from its bases.

    Like extract_archive for the archive ``source``; then, for every earlier
    backup its manifest names, ``open_base(ref)`` must give that backup's
    archive (and may check its checksum when the context ends).  Only the
    files this manifest says are kept there are taken from it, each checked
    against this manifest's sha256 and size, so the staged tree is exactly
    the tree of this backup: files deleted since a base are not restored.
    Every base archive is also verified whole against its own manifest.
    Links are made once every base has been read.
    With ``hash_files=False`` (see extract_archive), ``open_base`` must
    check each base's whole sha256, and a file taken from a base is matched
    by the base manifest's sha256, which that check proves.
    """
    extractor = _Extractor(targets)
    try:
        reader = _Reader(source, hash_files)
        _unpack(reader, extractor)
        reader.check()
        manifest = reader.manifest
        # Before any base is read: the manifest names every entry.
        check_manifest(manifest)
        for ref, wanted in sorted(_chain_needs(manifest, extractor).items()):
            with open_base(ref) as base_source:
                base = _Reader(base_source, hash_files)
                _unpack(base, extractor, wanted)
                base.check()
            # check() matched every member against the base's manifest.
            recorded = {e['path']: e for e in base.manifest['entries']}
            for name, want in wanted.items():
                got = base.seen.get(name, {})
                if (got.get('type') != 'file' or
                        recorded[name].get('sha256') != want['sha256'] or
                        got.get('size') != want['size']):
                    raise exception.ArtifactCorrupt(
                        'backup %s does not hold %r as the manifest of the '
                        'incremental backup records it' % (ref, name))
        extractor.seal()
    finally:
        extractor.close()
    return manifest

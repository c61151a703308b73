"""Streaming tar archives of service file sets, and their safe restore.

An archive is a zstd-compressed POSIX pax tar stream of directories,
regular files and symlinks relative to a node root, ending with a JSON
manifest member that lists every entry and each file's sha256.  The writer
builds the tar stream itself, as tarfile's writer is too slow for trees of
many small files; readers use tarfile in stream mode.  Extraction runs as
root, so it applies its own strict member filter rather than tarfile's.
"""

import dataclasses
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

import zstandard

from osbackup import exception
from osbackup import streams

MANIFEST_NAME = '.osbackup-manifest.json'
FORMAT = 1

CHUNK = streams.CHUNK
_BLOCK = tarfile.BLOCKSIZE
_MAX_MANIFEST = 1 << 30
_MAX_SYMLINKS = 40  # the kernel's limit, so our resolution matches it
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
    """Outcome of write_archive."""

    files: int
    bytes: int
    warnings: list[str]
    manifest: dict


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


class _Writer:
    """Emit tar members into a compressor and collect the manifest."""

    def __init__(self, out, progress):
        self._out = out
        self._progress = progress
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
        entry = {'path': name, 'type': kind, 'mode': mode, 'uid': st.st_uid,
                 'gid': st.st_gid, 'mtime': st.st_mtime_ns / 1e9}
        if kind == 'symlink':
            entry['target'] = target
        self.entries.append(entry)

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
                    self.add_file(name, entry.path)
                    continue
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode) and st.st_dev != dev:
                    self.warnings.append('%s: on another filesystem; '
                                         'skipped' % name)
                elif stat.S_ISDIR(st.st_mode):
                    self.header(name, st, 'dir')
                    stack.append((name, self._listdir(name, entry.path)))
                elif stat.S_ISLNK(st.st_mode):
                    link = os.readlink(entry.path)
                    self.header(name, st, 'symlink', target=link)
                    if _points_out(name, link, top):
                        # Stored as a link, never followed; but a restore
                        # refuses links leaving the tree, so say so now.
                        self.warnings.append(
                            '%s: symlink to %s points outside %s; restores '
                            'of this archive will be refused' %
                            (name, link, top))
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
        data = json.dumps(manifest, separators=(',', ':')).encode()
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
                  progress: typing.Callable[[int, int], None] | None = None
                  ) -> ArchiveStats:
    """Stream the trees at ``paths`` under ``root`` into ``sink``.

    Missing paths are skipped; what cannot be stored faithfully (special
    files, other filesystems, files changing) becomes a warning.  Errors
    writing ``sink`` propagate and leave the stream unfinished.
    """
    tops = _relative(paths, 'archive')
    skip = set(_relative(excludes, 'exclude'))
    # Nested tops would store entries twice.
    tops = [t for t in tops if not any(_under(t, o) for o in tops if o != t)
            and not any(_under(t, x) for x in skip)]
    out = streams.compressor(sink, level, threads)
    writer = _Writer(out, progress)
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
        elif not stat.S_ISREG(st.st_mode):
            # A symlinked top could only be restored as a link leaving its
            # tree, which extraction refuses.
            writer.warnings.append('%s: %s skipped' % (top, 'symlink' if (
                stat.S_ISLNK(st.st_mode)) else _special(st.st_mode)))
            continue
        elif not writer.add_file(top, path):
            continue
        stored.append(top)
    manifest = {'format': FORMAT, 'paths': stored, 'excludes': sorted(skip),
                'entries': writer.entries}
    writer.finish(manifest)
    out.close()
    return ArchiveStats(files=writer.files, bytes=writer.bytes,
                        warnings=writer.warnings, manifest=manifest)


class _Reader:
    """Walk an archive stream, hashing members and finding the manifest."""

    def __init__(self, source):
        self._stream = streams.decompressor(source)
        self._size = 0
        self._buf = memoryview(bytearray(CHUNK))
        self.tar = None
        self.current = None
        self.manifest = None
        self.seen: dict[str, dict] = {}

    def read(self, n: int = -1) -> bytes:
        """Feed tarfile, counting the decompressed bytes."""
        data = self._stream.read(n)
        self._size += len(data)
        return data

    def members(self) -> typing.Iterator[tuple[str, tarfile.TarInfo]]:
        self.tar = tarfile.open(fileobj=self, mode='r|',
                                bufsize=CHUNK, encoding='utf-8',
                                errors='surrogateescape')
        while (member := self.tar.next()) is not None:
            # Stream mode would otherwise keep every TarInfo.
            self.tar.members.clear()
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
        end = self.tar.offset + 2 * _BLOCK
        # tarfile takes a truncated stream or a bad header for the end of
        # the archive; draining also makes zstd check its frame checksum.
        while self.read(CHUNK):
            pass
        if self._size < end:
            raise exception.ArtifactCorrupt('archive is truncated')
        if self.manifest is None:
            raise exception.ArtifactCorrupt('archive has no manifest')

    def _read_manifest(self, member: tarfile.TarInfo) -> None:
        try:
            if not member.isreg() or member.size > _MAX_MANIFEST:
                raise ValueError(member.size)
            manifest = json.loads(self.tar.extractfile(member).read())
            if (manifest['format'] != FORMAT or
                    not isinstance(manifest['paths'], list) or
                    not all(map(_canonical, manifest['paths'])) or
                    not all(isinstance(e['path'], str) and e['type'] in
                            _TYPEFLAGS for e in manifest['entries'])):
                raise ValueError(manifest['format'])
        except (ValueError, TypeError, KeyError):
            raise exception.ArtifactCorrupt(
                'archive manifest is malformed') from None
        self.manifest = manifest

    def record(self, name: str, member: tarfile.TarInfo) -> None:
        kind = _TYPES.get(member.type, repr(member.type))
        if kind == 'file':
            self.copy(name, member)
        elif kind == 'symlink':
            self.seen[name] = {'type': kind, 'target': member.linkname}
        else:
            self.seen[name] = {'type': kind}

    def copy(self, name: str, member: tarfile.TarInfo,
             fd: int | None = None) -> None:
        """Hash a file member's data, writing it to ``fd`` if given."""
        src = self.tar.extractfile(member)
        digest, size, buf = hashlib.sha256(), 0, self._buf
        while n := src.readinto(buf):
            data = buf[:n]
            digest.update(data)
            size += n
            while fd is not None and data:
                data = data[os.write(fd, data):]
        self.seen[name] = {'type': 'file', 'size': size,
                           'sha256': digest.hexdigest()}

    def check(self) -> None:
        """Compare what was read against the manifest."""
        expected = {e['path']: e for e in self.manifest['entries']}
        if len(expected) != len(self.manifest['entries']):
            raise exception.ArtifactCorrupt('manifest lists a path twice')
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


def verify_archive(source: typing.BinaryIO) -> dict:
    """Read a whole archive and check it against its manifest.

    Raises ArtifactCorrupt on any damage; returns the manifest.
    """
    reader = _Reader(source)
    try:
        for name, member in reader.members():
            reader.record(name, member)
    except _READ_ERRORS as e:
        raise reader.corrupt(e) from e
    reader.check()
    return reader.manifest


def _unsafe(name: str, why: str) -> exception.UnsafeArchive:
    return exception.UnsafeArchive('unsafe archive member %r: %s'
                                   % (name, why), member=name)


def _check_member(name: str, member: tarfile.TarInfo) -> None:
    if '\0' in name or '\0' in member.linkname:
        raise _unsafe(name, 'NUL in name')
    if name.startswith('/'):
        raise _unsafe(name, 'absolute name')
    if '..' in name.split('/'):
        raise _unsafe(name, '".." in name')
    if not _canonical(name):
        raise _unsafe(name, 'malformed name')
    if member.type in _UNSAFE_TYPES:
        raise _unsafe(name, _UNSAFE_TYPES[member.type])
    if member.type not in _TYPES or member.sparse is not None:
        raise _unsafe(name, 'unsupported type %r' % member.type)
    if member.issym() and not member.linkname:
        raise _unsafe(name, 'empty symlink')


def _points_out(name: str, target: str, top: str) -> bool:
    """Textual check at backup time: absolute or climbing out of ``top``."""
    if target.startswith('/'):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name),
                                                 target))
    return not _under(resolved, top)


def _escapes(name: str, target: str, top: str, seen: dict) -> bool:
    """Tell whether symlink ``name`` resolves outside the tree ``top``.

    Follows the links in ``seen`` as the kernel would, since a lexical
    check is fooled by ``..`` after a symlinked component.
    """
    if name == top or target.startswith('/'):
        return True
    path = name[len(top) + 1:].split('/')[:-1]
    todo = target.split('/')[::-1]
    budget = _MAX_SYMLINKS
    while todo:
        part = todo.pop()
        if part == '..':
            if not path:
                return True
            path.pop()
        elif part not in ('', '.'):
            path.append(part)
            link = seen.get(top + '/' + '/'.join(path), {}).get('target')
            if link is not None:
                budget -= 1
                if budget < 0 or link.startswith('/'):
                    return True
                path.pop()
                todo.extend(link.split('/')[::-1])
    return False


def _mtime_ns(member: tarfile.TarInfo) -> int:
    match = _PAX_MTIME.fullmatch(member.pax_headers.get('mtime', ''))
    if not match:
        return round(member.mtime * 10 ** 9)
    sign, sec, frac = match.groups()
    return (-1 if sign else 1) * (int(sec) * 10 ** 9 +
                                  int((frac or '').ljust(9, '0')))


class _Extractor:
    """Create members in staging directories without following links."""

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
        self._dirs: list[tuple[str, tarfile.TarInfo]] = []

    def prefix(self, name: str) -> str | None:
        return next((p for p in self.targets if _under(name, p)), None)

    def _path(self, name: str, prefix: str) -> str:
        staging = self.targets[prefix]
        if name == prefix:
            return staging
        parents = [staging]
        parts = name[len(prefix) + 1:].split('/')
        for part in parts[:-1]:
            parents.append(os.path.join(parents[-1], part))
        # A symlink planted by an earlier member must never be written
        # through (x -> ../.. then x/passwd).
        for parent in parents:
            try:
                if not stat.S_ISDIR(os.lstat(parent).st_mode):
                    raise _unsafe(name, 'parent %r is not a directory'
                                  % parent)
            except FileNotFoundError:
                raise _unsafe(name, 'parent directory missing') from None
        return os.path.join(parents[-1], parts[-1])

    def _apply(self, target, member: tarfile.TarInfo, link=False) -> None:
        if self._as_root:
            # Names first: a rebuilt node may number its users anew.
            uid = self._accounts['uname', member.uname]
            gid = self._accounts['gname', member.gname]
            os.chown(target, member.uid if uid is None else uid,
                     member.gid if gid is None else gid,
                     follow_symlinks=not link)
        if not link:
            # After chown, which clears setuid and setgid.
            os.chmod(target, member.mode & 0o7777)
        mtime = _mtime_ns(member)
        os.utime(target, ns=(mtime, mtime), follow_symlinks=not link)

    def extract(self, reader: _Reader, name: str, member: tarfile.TarInfo,
                prefix: str) -> None:
        path = self._path(name, prefix)
        if not member.isreg():
            reader.record(name, member)
        try:
            if member.isdir():
                if name != prefix or not os.path.lexists(path):
                    os.mkdir(path, 0o700)
                elif not stat.S_ISDIR(os.lstat(path).st_mode):
                    raise exception.InvalidInput(
                        'staging path %r is not a directory' % path)
                self._dirs.append((path, member))
            elif member.issym():
                if _escapes(name, member.linkname, prefix, reader.seen):
                    raise _unsafe(name, 'symlink to %r leaves %r'
                                  % (member.linkname, prefix))
                os.symlink(member.linkname, path)
                self._apply(path, member, link=True)
            else:
                fd = os.open(path, _WRITE_FLAGS, 0o600)
                try:
                    reader.copy(name, member, fd)
                    self._apply(fd, member)
                finally:
                    os.close(fd)
        except FileExistsError:
            raise _unsafe(name, 'already exists in staging') from None

    def check_links(self, seen: dict, tops: list[str]) -> None:
        """Check names and links against the whole archive."""
        links = {n for n, info in seen.items() if 'target' in info}
        for name, info in seen.items():
            top = self.prefix(name) or next(
                (t for t in tops if _under(name, t)), None)
            if top is None:
                raise _unsafe(name, 'outside the archived paths')
            parent = name
            while '/' in parent:
                parent = parent.rsplit('/', 1)[0]
                if parent in links:
                    raise _unsafe(name, 'parent %r is a symlink' % parent)
            if name in links and _escapes(name, info['target'], top, seen):
                raise _unsafe(name, 'symlink to %r leaves %r'
                              % (info['target'], top))

    def seal(self) -> None:
        """Give directories their modes, owners and mtimes."""
        # Deepest first: a parent's final mode may bar access below it.
        for path, member in sorted(self._dirs, key=lambda d: -len(d[0])):
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY |
                         os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                self._apply(fd, member)
            finally:
                os.close(fd)


def extract_archive(source: typing.BinaryIO,
                    targets: dict[str, str]) -> dict:
    """Restore the members under each prefix in ``targets`` to its path.

    ``targets`` maps an archived top path such as ``etc/nova`` to a staging
    directory; other members are only verified.  An unsafe member rejects
    the whole archive with UnsafeArchive, damage raises ArtifactCorrupt;
    the caller then removes the staging directories.  Returns the manifest.
    """
    extractor = _Extractor(targets)
    reader = _Reader(source)
    try:
        for name, member in reader.members():
            _check_member(name, member)
            prefix = extractor.prefix(name)
            if prefix is None:
                reader.record(name, member)
            else:
                extractor.extract(reader, name, member, prefix)
    except _READ_ERRORS as e:
        raise reader.corrupt(e) from e
    extractor.check_links(reader.seen, reader.manifest['paths'])
    reader.check()
    extractor.seal()
    return reader.manifest

"""Writing an archive: a tree's pax tar members, then its manifest.

Tar headers are built here rather than by tarfile, which is too slow for
trees of many small files.  An incremental archive carries a file unchanged
since its base instead of storing it again (see _Writer.carry).
"""

import dataclasses
import hashlib
import json
import os
import posixpath
import stat
import struct
import tarfile
import time
import typing

from osbackup.archive import common
from osbackup import exception
from osbackup import streams

# Plain globals, not common.X: the copy loop reads them once per chunk.
CHUNK = common.CHUNK
_BLOCK = common._BLOCK
_USTAR = struct.Struct('100s8s8s8s12s12s8sc100s8s32s32s183x')
# O_NONBLOCK: a file swapped for a FIFO after scandir must not hang us.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_clock = time.perf_counter


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
    #: Seconds spent per stage in the calling thread: ``read`` (opening
    #: and reading files), ``hash`` (their sha256), ``compress`` (in zstd,
    #: waits for its own threads included) and ``handoff`` (in the sink's
    #: writes, taking the compressed stream).
    split: dict = dataclasses.field(default_factory=dict)


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
              common._TYPEFLAGS[kind], text('linkpath', target, 100),
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
        #: Seconds per stage, summed in locals per file and added here.
        self.read_s = self.hash_s = self.compress_s = 0.0
        self._progress = progress
        #: path -> entry of the base manifest, for incremental archives.
        self._previous = previous
        self._base_ref = base_ref
        self.carried = 0
        self.carried_bytes = 0
        self._pending = [0, 0]
        self._buf = memoryview(bytearray(CHUNK))
        self._accounts = common._Accounts()
        self.offset = 0
        self.files = 0
        self.bytes = 0
        self.entries: list[dict] = []
        self.warnings: list[str] = []

    def _emit(self, data: bytes) -> None:
        began = _clock()
        self._out.write(data)
        self.compress_s += _clock() - began
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
        began = _clock()
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
            self.read_s += _clock() - began
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
        read_s = hash_s = compress_s = 0.0
        while left:
            began = _clock()
            n = os.readv(fd, [buf[:left] if left < CHUNK else buf])
            read = _clock()
            read_s += read - began
            if not n:
                break
            data = buf[:n] if n < CHUNK else buf
            digest.update(data)
            hashed = _clock()
            out.write(data)
            began = _clock()
            hash_s += hashed - read
            compress_s += began - hashed
            left -= n
            self._report(n)
        self.read_s += read_s
        self.hash_s += hash_s
        self.compress_s += compress_s
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
                    why = common.entry_problem(name, 'symlink', link)
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
        self._emit(_header(common.MANIFEST_NAME, 'file', 0o600, 0, 0,
                           len(data), time.time_ns()))
        self._emit(data + bytes(-len(data) % _BLOCK))
        self._emit(bytes(2 * _BLOCK))
        self._emit(bytes(-self.offset % tarfile.RECORDSIZE))
        self.flush_progress()


class _TimedSink:
    """The archive's sink, its writes timed: the compressor calls it."""

    def __init__(self, sink: typing.BinaryIO):
        self._sink = sink
        self.seconds = 0.0

    def write(self, data) -> int:
        began = _clock()
        n = self._sink.write(data)
        self.seconds += _clock() - began
        return n

    def flush(self) -> None:
        flush = getattr(self._sink, 'flush', None)
        if flush is not None:
            began = _clock()
            flush()
            self.seconds += _clock() - began


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
    sink = _TimedSink(sink)
    tops = _relative(paths, 'archive')
    skip = set(_relative(excludes, 'exclude'))
    # Nested tops would store entries twice.
    tops = [t for t in tops
            if not any(common._under(t, o) for o in tops if o != t)
            and not any(common._under(t, x) for x in skip)]
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
    manifest = {'format': common.FORMAT, 'paths': stored,
                'excludes': sorted(skip), 'entries': writer.entries}
    if base is not None:
        manifest['base'] = base_ref
    # The restore's rule, checked while the backup can still fail: the
    # stream is left unfinished, so nothing unrestorable is committed.
    common.check_manifest(manifest, 'the backup would not restore: ')
    writer.finish(manifest)
    began = _clock()
    out.close()
    writer.compress_s += _clock() - began
    # The compressor's time includes its hand-over to the sink.
    split = {'read': writer.read_s, 'hash': writer.hash_s,
             'compress': writer.compress_s - sink.seconds,
             'handoff': sink.seconds}
    return ArchiveStats(files=writer.files + writer.carried,
                        bytes=writer.bytes + writer.carried_bytes,
                        warnings=writer.warnings, manifest=manifest,
                        stored_files=writer.files, stored_bytes=writer.bytes,
                        manifest_json=writer.manifest_json, split=split)

"""Extracting an archive into staging directories, safely, as root.

Members are checked against the restore's rule (common.entry_problem and
common.tree_problem) rather than tarfile's: links are restored as links
whatever they point to, like tarfile's ``tar`` filter, but nothing is ever
written through one or outside the staging directories.  extract_chain
restores an incremental archive, taking unchanged files from its bases.
"""

import collections
import errno
import os
import stat
import tarfile
import typing

from osbackup.archive import common
# 'reader' names the _Reader of an archive throughout this module.
from osbackup.archive import reader as reader_mod
from osbackup import exception

_WRITE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                os.O_CLOEXEC)


def _mtime_ns(member: tarfile.TarInfo) -> int:
    match = reader_mod._PAX_MTIME.fullmatch(
        member.pax_headers.get('mtime', ''))
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
            if not common._canonical(prefix) or not os.path.isabs(staging):
                raise exception.InvalidInput(
                    'bad restore target %r -> %r' % (prefix, staging))
            if any(common._under(prefix, o) for o in targets if o != prefix):
                raise exception.InvalidInput(
                    'restore target %r overlaps another' % prefix)
        self.targets = targets
        self._as_root = os.geteuid() == 0
        self._accounts = common._Accounts()
        # (prefix, path below it, member) of directories and of links.
        self._dirs: list[tuple[str, str, reader_mod._Member]] = []
        self._links: list[tuple[str, str, reader_mod._Member]] = []
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
                    raise common._unsafe(name, 'parent %r is a symlink'
                                         % parent) from None
            if isinstance(e, FileNotFoundError):
                raise common._unsafe(name,
                                     'parent directory missing') from None
            if e.errno in (errno.ENOTDIR, errno.ELOOP):
                raise common._unsafe(name, 'a parent in staging is not a '
                                     'directory') from None
            raise

    def _apply(self, target, member: reader_mod._Member, dir_fd=None) -> None:
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

    def extract(self, reader: reader_mod._Reader, name: str,
                member: reader_mod._Member, prefix: str) -> None:
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
            raise common._unsafe(name, 'already exists in staging') from None

    def _top(self, reader: reader_mod._Reader, name: str,
             member: reader_mod._Member) -> None:
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
            raise common._unsafe(name, 'a top path is a symlink')
        else:
            self._write(reader, name, member,
                        os.open(path, _WRITE_FLAGS, 0o600))

    def _write(self, reader: reader_mod._Reader, name: str,
               member: reader_mod._Member, fd: int) -> None:
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
                raise common._unsafe(prefix + '/' + rel,
                                     'already exists in staging') from None
            self._apply(tail, member, dir_fd=fd)
        # Deepest first: a parent's final mode may bar access below it.
        for prefix, rel, member in sorted(self._dirs,
                                          key=lambda d: -len(d[1])):
            self._apply(self._dir_fd(prefix, rel), member)
        self.close()


def _unpack(reader: reader_mod._Reader, extractor: _Extractor,
            take: typing.Container[str] | None = None) -> None:
    """Read one archive whole, extracting what lies under the targets.

    With ``take``, only the regular files it names are extracted; every
    other member is still read, hashed and checked.
    """
    try:
        for name, member in reader.members():
            reader_mod._check_member(name, member)
            prefix = extractor.prefix(name)
            if prefix is None or take is not None and not (
                    name in take and member.isreg()):
                reader.record(name, member)
            else:
                extractor.extract(reader, name, member, prefix)
    except reader_mod._READ_ERRORS as e:
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
        reader = reader_mod._Reader(source, hash_files)
        _unpack(reader, extractor)
        reader.check()
        common.check_manifest(reader.manifest)
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
        reader = reader_mod._Reader(source, hash_files)
        _unpack(reader, extractor)
        reader.check()
        manifest = reader.manifest
        # Before any base is read: the manifest names every entry.
        common.check_manifest(manifest)
        for ref, wanted in sorted(_chain_needs(manifest, extractor).items()):
            with open_base(ref) as base_source:
                base = reader_mod._Reader(base_source, hash_files)
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

"""What the archive writer, reader and extractor share.

The member names and types of the format, the account lookups, and the one
rule of what a restore accepts (entry_problem, tree_problem and
check_manifest): the writer applies it when a backup is taken, the reader
and the extractor when an archive is verified or restored.
"""

import grp
import pwd
import tarfile
import typing

from osbackup import exception
from osbackup import streams

MANIFEST_NAME = '.osbackup-manifest.json'
FORMAT = 1

CHUNK = streams.CHUNK
_BLOCK = tarfile.BLOCKSIZE
_TYPEFLAGS = {'file': b'0', 'dir': b'5', 'symlink': b'2'}
_TYPES = {tarfile.REGTYPE: 'file', tarfile.AREGTYPE: 'file',
          tarfile.DIRTYPE: 'dir', tarfile.SYMTYPE: 'symlink'}
_LOOKUPS = {'uid': lambda k: pwd.getpwuid(k).pw_name,
            'gid': lambda k: grp.getgrgid(k).gr_name,
            'uname': lambda k: pwd.getpwnam(k).pw_uid,
            'gname': lambda k: grp.getgrnam(k).gr_gid}


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

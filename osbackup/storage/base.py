"""The Storage interface: where artifacts live.

A backend stores opaque byte streams under keys such as
``<host>/<backup_id>/<service>/<name>.tar.zst`` and hands back a location
string that identifies the stored object for later reads and deletes.
Writes are atomic: an artifact is either complete under its final name or
absent; an interrupted write leaves at most a ``.partial`` object that
``cleanup_partials`` removes.

``list`` streams what a target holds, for audits (objects the catalogue
does not know, objects it lists that are gone) and for rebuilding the
catalogue from storage.
"""

from __future__ import annotations

import abc
import re
import typing

from osbackup import records

#: Keys of the artifacts osbackup writes (drivers/base.py
#: TaskContext.key): <host>/<backup id or uuid>/<service>/<name>.zst[.enc].
ARTIFACT_KEY = (r'[^/]+/(?P<ref>\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-'
                r'[0-9a-f]{4}-[0-9a-f]{12})/[^/]+/[^/]+\.zst(?:\.enc)?')
_ARTIFACT_KEY = re.compile(ARTIFACT_KEY)
#: Seconds after which a leftover of an interrupted write is surely not
#: a write still running ([storage] leftover_age defaults to the same).
LEFTOVER_AGE = 24 * 3600


def ours(key: str) -> bool:
    """Whether ``key`` is of osbackup's own layout: artifact or record.

    Clean-ups never touch anything else, so a bucket or container may be
    shared with other data.
    """
    return bool(_ARTIFACT_KEY.fullmatch(key)) or (
        key.startswith(records.PREFIX) and '/' not in
        key[len(records.PREFIX):])


class StoredObject(typing.NamedTuple):
    """A committed object as ``Storage.list`` finds it."""

    #: Exactly what ``Writer.commit`` returned for it (and the catalogue
    #: stores), so ``location in catalogue`` comparisons work.
    location: str
    #: Bytes stored (of the ciphertext for an encrypted object).
    size: int
    #: POSIX time of its last write, as the target reports it.
    mtime: float


class Writer(abc.ABC):
    """A write in progress; ``commit`` makes it visible, ``abort`` drops it."""

    @abc.abstractmethod
    def write(self, data: bytes) -> int:
        """Append bytes."""

    @abc.abstractmethod
    def commit(self) -> str:
        """Make the object durable under its final name; return location."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard everything written. Safe to call more than once."""

    def flush(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        return False


class Storage(abc.ABC):
    """A storage backend (entry point namespace ``osbackup.storage``)."""

    name: str = ''

    def __init__(self, conf):
        self.conf = conf

    @abc.abstractmethod
    def open_writer(self, key: str) -> Writer:
        """Start writing the object ``key``."""

    @abc.abstractmethod
    def open_reader(self, location: str) -> typing.BinaryIO:
        """Open a stored object for streaming reads."""

    @abc.abstractmethod
    def delete(self, location: str) -> None:
        """Delete a stored object; a missing object is not an error."""

    @abc.abstractmethod
    def exists(self, location: str) -> bool:
        """Whether the object is stored."""

    @abc.abstractmethod
    def list(self, prefix: str = '') -> typing.Iterator[StoredObject]:
        """Yield every committed object whose key starts with ``prefix``.

        ``prefix`` is a plain string prefix of the key (``'ctl-1/'``,
        ``'_records/'``). Leftovers of writes in progress or interrupted
        (partial files, segments, multipart parts) are never listed. The
        listing streams: a million objects are never held in memory.
        Raises StorageError when the target itself (directory, container,
        bucket) does not exist: an unmounted or mistyped target must not
        look empty.
        """

    def free_bytes(self) -> int | None:
        """Free space at the target, or None when unknown."""
        return None

    def direct_path(self, location: str) -> str | None:
        """A local file holding exactly what open_reader() gives.

        None when every read costs a fetch or a decryption: a reader that
        needs an artifact several times then fetches it once.
        """
        return None

    def cleanup_partials(self, prefix: str = '') -> list[str]:
        """Remove leftovers of interrupted writes under the key ``prefix``.

        Agents pass their own host name so that one node never removes
        another node's write in progress on shared storage.
        """
        return []

    def cleanup_orphans(self, max_age: float = LEFTOVER_AGE) -> list[str]:
        """Remove leftovers of interrupted writes older than ``max_age`` s.

        For prune: an object store keeps the parts of an upload that its
        writer could not abort (killed, cut off); this finds them
        anywhere in the target, leaving younger ones to writes that may
        still be running.
        """
        return []

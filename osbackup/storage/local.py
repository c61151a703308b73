"""Local directory storage (also right for an NFS mount shared by nodes).

Objects are written 0600 inside 0700 directories whatever the umask (they
hold database passwords and fernet keys), under a ``.partial`` name opened
with O_EXCL, then fsynced, renamed into place and the directory fsynced, so
a crash never leaves a half-written artifact under a final name.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import time

from osbackup import durable
from osbackup import exception
from osbackup.storage import base

PARTIAL_SUFFIX = '.partial'


def _space_error(exc, path):
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return exception.InsufficientSpace(
            'No space left on the backup target writing %s' % path)
    return exception.StorageError('Writing %s failed: %s' % (path, exc))


class LocalWriter(base.Writer):
    def __init__(self, final_path):
        self.final_path = final_path
        self.partial_path = final_path + PARTIAL_SUFFIX
        self._fd = os.open(self.partial_path,
                           os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                           os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.fchmod(self._fd, 0o600)
        self._file = os.fdopen(self._fd, 'wb', buffering=1 << 20)
        self._done = False

    def write(self, data):
        try:
            return self._file.write(data)
        except OSError as exc:
            raise _space_error(exc, self.final_path) from exc

    def commit(self):
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.rename(self.partial_path, self.final_path)
            durable.fsync_dir(os.path.dirname(self.final_path))
        except OSError as exc:
            self.abort()
            raise _space_error(exc, self.final_path) from exc
        self._done = True
        return self.final_path

    def abort(self):
        if self._done:
            return
        self._done = True
        try:
            self._file.close()
        except OSError:
            pass  # a full disk fails the final flush too; the file goes
        try:
            os.unlink(self.partial_path)
        except FileNotFoundError:
            pass


class LocalStorage(base.Storage):
    """Artifacts as files under ``[storage] local_path``."""

    name = 'local'

    def __init__(self, conf, path: str | None = None):
        super().__init__(conf)
        self.path = os.path.abspath(path or conf.storage.local_path)

    def _ensure_dir(self, path):
        os.makedirs(path, mode=0o700, exist_ok=True)
        # makedirs honours the umask and leaves existing dirs alone.
        walk = path
        while len(walk) >= len(self.path):
            os.chmod(walk, 0o700)
            walk = os.path.dirname(walk)

    def _path_for(self, key):
        path = os.path.normpath(os.path.join(self.path, key))
        if not path.startswith(self.path + os.sep):
            raise exception.InvalidInput('Storage key %r escapes %s'
                                         % (key, self.path))
        return path

    def _check_location(self, location):
        path = os.path.normpath(location)
        if not path.startswith(self.path + os.sep):
            raise exception.InvalidInput(
                'Location %s is not inside the local storage %s'
                % (location, self.path))
        return path

    def open_writer(self, key):
        path = self._path_for(key)
        try:
            self._ensure_dir(os.path.dirname(path))
            if os.path.exists(path + PARTIAL_SUFFIX):
                os.unlink(path + PARTIAL_SUFFIX)
            return LocalWriter(path)
        except OSError as exc:
            raise _space_error(exc, path) from exc

    def open_reader(self, location):
        path = self._check_location(location)
        try:
            reader = open(path, 'rb', buffering=0)
        except FileNotFoundError:
            raise exception.NotFound('Artifact %s is missing' % location)
        # Read start to end: a larger readahead keeps a cold restore or
        # verify from waiting on the disk between chunks.
        os.posix_fadvise(reader.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        return reader

    def direct_path(self, location):
        return self._check_location(location)

    def delete(self, location):
        path = self._check_location(location)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        # Drop directories the delete left empty, up to the storage root.
        parent = os.path.dirname(path)
        while parent != self.path and parent.startswith(self.path):
            try:
                os.rmdir(parent)
            except OSError:
                break
            parent = os.path.dirname(parent)

    def exists(self, location):
        return os.path.isfile(self._check_location(location))

    def free_bytes(self):
        probe = self.path
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        return shutil.disk_usage(probe).free

    def list(self, prefix=''):
        # Walk only the directory the prefix lies in; os.walk reads one
        # directory at a time, so the listing streams.
        if not os.path.isdir(self.path):
            raise exception.StorageError(
                'Cannot list the local storage %s: it is not a directory '
                '(not created or not mounted)' % self.path)
        head = prefix.rpartition('/')[0]
        top = self._path_for(head) if head else self.path
        if not os.path.isdir(top):
            return
        for dirpath, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(PARTIAL_SUFFIX):
                    continue
                path = os.path.join(dirpath, name)
                if not os.path.relpath(path, self.path).startswith(prefix):
                    continue
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue    # deleted while we walked
                if stat.S_ISREG(st.st_mode):
                    yield base.StoredObject(path, st.st_size, st.st_mtime)

    def cleanup_partials(self, prefix=''):
        return self._remove_partials(prefix, float('inf'))

    def cleanup_orphans(self, max_age=base.LEFTOVER_AGE):
        return self._remove_partials('', time.time() - max_age)

    def _remove_partials(self, prefix, before):
        removed = []
        top = self._path_for(prefix) if prefix else self.path
        if not os.path.isdir(top):
            return removed
        for dirpath, _dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(dirpath, name)
                if not name.endswith(PARTIAL_SUFFIX):
                    continue
                try:
                    if os.lstat(path).st_mtime < before:
                        os.unlink(path)
                        removed.append(path)
                except FileNotFoundError:
                    pass    # its writer committed or aborted meanwhile
        return removed

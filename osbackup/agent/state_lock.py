"""One agent per state directory: an exclusive lock held for life.

Two agents sharing a ``state_path`` would race on the task and restore
journals (renames failing under each other, a task run twice). The lock
is ``flock`` on ``<state_path>/agent.lock``: the kernel drops it when the
process ends however it ends, so a stale lock cannot outlive a crash, and
the file names the pid that holds it for the refusal message.
"""

import fcntl
import os

from osbackup import exception

LOCK_NAME = 'agent.lock'


class StateDirectoryBusy(exception.OsbackupError):
    code = 'state_directory_busy'


class StateLock:
    """The held lock; ``release()`` (or process exit) frees it."""

    def __init__(self, fd: int, path: str):
        self.fd = fd
        self.path = path

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def acquire(state_path: str) -> StateLock:
    """Lock ``state_path`` for this process or raise StateDirectoryBusy."""
    path = os.path.join(state_path, LOCK_NAME)
    try:
        os.makedirs(state_path, mode=0o700, exist_ok=True)
        # O_CLOEXEC (Python's default): mysqldump and the other children
        # must not inherit, and so keep, the lock.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StateDirectoryBusy('Cannot lock the state directory %s '
                                 '([DEFAULT] state_path): %s'
                                 % (state_path, exc.strerror)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise StateDirectoryBusy(
            'Another osbackup-agent%s uses the state directory %s ([DEFAULT] '
            'state_path): give each agent its own'
            % (' (pid %s)' % holder if holder else '', state_path)) from None
    except OSError as exc:
        os.close(fd)
        raise StateDirectoryBusy('Cannot lock the state directory %s: %s'
                                 % (state_path, exc.strerror)) from None
    os.ftruncate(fd, 0)
    os.write(fd, b'%d\n' % os.getpid())
    return StateLock(fd, path)


def _holder(fd: int) -> str | None:
    """The pid the holder wrote, if it did (and it looks like one)."""
    try:
        text = os.pread(fd, 32, 0).decode('ascii', 'replace').strip()
    except OSError:
        return None
    return text if text.isdigit() else None

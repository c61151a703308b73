"""Durable writes: the fsync and rename patterns every journal relies on.

A rename is atomic but only durable once the directory holding it is
fsynced (Pillai et al., OSDI '14), so both steps live here together.
"""

import json
import os


def fsync_dir(path: str) -> None:
    """Make renames and creations inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data``, atomically and durably, mode 0600."""
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
    fsync_dir(os.path.dirname(path))


def write_json(path: str, data) -> None:
    """Replace ``path`` with ``data`` as JSON, atomically, mode 0600."""
    # dumps, not dump: dump streams through the pure-Python encoder, ten
    # times slower on a large manifest.
    write_bytes(path, json.dumps(data, separators=(',', ':')).encode())

"""Durable writes: the fsync and rename patterns every journal relies on.

A rename is atomic but only durable once the directory holding it is
fsynced (Pillai et al., OSDI '14), so both steps live here together.
"""

import ctypes
import json
import os
import typing

# The interpreter's own symbols hold libc's: no library search (which
# runs ldconfig, ~14 ms) in every process that imports this module.
_libc = ctypes.CDLL(None, use_errno=True)


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


def sync_filesystems(paths: typing.Iterable[str]) -> None:
    """Flush every filesystem holding one of ``paths`` to disk.

    One ``syncfs`` per filesystem makes a whole staged tree durable at the
    cost of its writeback, where an fsync per file would wait for each
    file in turn. Raises OSError if the kernel reports a write error.
    """
    seen = set()
    for path in paths:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            dev = os.fstat(fd).st_dev
            if dev in seen:
                continue
            seen.add(dev)
            if _libc.syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), path)
        finally:
            os.close(fd)

"""Secret keys read from files named in the configuration.

The RPC signing key and the storage encryption key are files, never
option values: a key in ``osbackup.conf`` would travel wherever the
configuration does (config management, bug reports, ``--config-dir``
dumps). A key file must not be readable by other users and must hold at
least 32 characters of key material, e.g. ``openssl rand -hex 32``.
"""

import hashlib
import hmac
import os
import stat

from osbackup import exception

MIN_LENGTH = 32
HOW_TO_CREATE = ('create one with "openssl rand -hex 32 > FILE; chmod 600 '
                 'FILE"')


class KeyFileError(exception.InvalidInput):
    code = 'bad_key_file'


def load(path: str, option: str) -> bytes:
    """Read the key in ``path`` (named by ``option``, for errors)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise KeyFileError('Cannot read %s %s: %s; %s'
                           % (option, path, exc.strerror, HOW_TO_CREATE))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError('%s %s is not a regular file'
                               % (option, path))
        if st.st_mode & 0o007:
            raise KeyFileError(
                '%s %s is accessible to other users (mode %04o); run '
                '"chmod 600 %s"' % (option, path, stat.S_IMODE(st.st_mode),
                                    path))
        with os.fdopen(fd, 'rb', closefd=False) as f:
            key = f.read(4096).strip()
    finally:
        os.close(fd)
    if len(key) < MIN_LENGTH:
        raise KeyFileError('%s %s holds %d characters of key, at least %d '
                           'are needed; %s' % (option, path, len(key),
                                               MIN_LENGTH, HOW_TO_CREATE))
    return key


def derive(key: bytes, purpose: bytes) -> bytes:
    """A 32-byte subkey of ``key`` for one purpose (HMAC-SHA256 as a KDF).

    Using one derived key per purpose keeps, say, a signing key that was
    also (wrongly) configured as the encryption key from being one key
    used for two algorithms.
    """
    return hmac.new(key, b'osbackup key derivation\0' + purpose,
                    hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key, to tell keys apart in errors."""
    return derive(key, b'key id')[:6].hex()

"""Encryption at rest: AES-256-GCM in authenticated chunks, over any backend.

Archives and dumps hold database passwords and fernet keys, so whoever
reads the backup store holds the cloud. With ``[storage]
encryption_key_file`` set, every object is written as::

    header   = "OSBKENC1" | key id (6 bytes) | random prefix (8 bytes)
    chunk i  = final flag (1 byte) | length (4 bytes) | AES-GCM(chunk)

Each chunk holds up to 1 MiB of plaintext, under the nonce ``prefix |
i`` (a random prefix per object, a counter per chunk) with the header, the
index and the final flag as associated data. Changing, reordering,
dropping or appending chunks, cutting the object short or swapping in
another object's chunks all fail authentication, and the reader raises
ArtifactCorrupt ("cannot decrypt/authenticate") before handing out a byte
of the bad chunk. Encrypted objects get a ``.enc`` suffix, so the location
in the catalogue, not the stored bytes, says whether to decrypt: objects
written before the key was set stay readable, and one without a ``.enc``
location is never silently taken for ciphertext.

Checksums in the catalogue are of the plaintext, as before.
"""

from __future__ import annotations

import io
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from osbackup import exception
from osbackup import keyfile
from osbackup.storage import base
from osbackup import streams

MAGIC = b'OSBKENC1'
SUFFIX = '.enc'
CHUNK = streams.CHUNK
_TAG = 16
_KID = 6
_PREFIX = 8
HEADER_SIZE = len(MAGIC) + _KID + _PREFIX
_RECORD = struct.Struct('>BI')      # final flag, ciphertext length
_INDEX = struct.Struct('>I')
_MAX_CHUNKS = 2 ** 32


class Cipher:
    """The storage key, as an AES-256-GCM AEAD."""

    def __init__(self, key: bytes):
        self.aead = AESGCM(keyfile.derive(key, b'storage encryption'))
        self.key_id = bytes.fromhex(keyfile.key_id(key))[:_KID]

    @classmethod
    def from_conf(cls, conf) -> 'Cipher | None':
        path = conf.storage.encryption_key_file
        if not path:
            return None
        return cls(keyfile.load(path, '[storage] encryption_key_file'))


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + _INDEX.pack(index) + (b'\1' if final else b'\0')


class EncryptingWriter(base.Writer):
    """Encrypt into another backend's writer, one chunk at a time."""

    def __init__(self, inner: base.Writer, cipher: Cipher):
        self._inner = inner
        self._aead = cipher.aead
        self._prefix = os.urandom(_PREFIX)
        self._header = MAGIC + cipher.key_id + self._prefix
        self._buf = bytearray()
        self._index = 0
        try:
            inner.write(self._header)
        except BaseException:
            inner.abort()
            raise

    def _emit(self, plain: bytes, final: bool) -> None:
        if self._index >= _MAX_CHUNKS:
            raise exception.StorageError('object too large to encrypt')
        sealed = self._aead.encrypt(
            self._prefix + _INDEX.pack(self._index), plain,
            _aad(self._header, self._index, final))
        self._inner.write(_RECORD.pack(final, len(sealed)) + sealed)
        self._index += 1

    def write(self, data) -> int:
        self._buf += data
        # Keep the last chunk back: only commit knows it is the final one.
        while len(self._buf) > CHUNK:
            self._emit(bytes(self._buf[:CHUNK]), final=False)
            del self._buf[:CHUNK]
        return len(data)

    def commit(self) -> str:
        try:
            self._emit(bytes(self._buf), final=True)
        except BaseException:
            self.abort()
            raise
        self._buf.clear()
        return self._inner.commit()

    def abort(self) -> None:
        self._buf.clear()
        self._inner.abort()


class DecryptingReader(io.RawIOBase):
    """Authenticate and decrypt an object chunk by chunk."""

    def __init__(self, raw, cipher: Cipher, location: str):
        super().__init__()
        self._raw = raw
        self._aead = cipher.aead
        self._location = location
        self._plain = b''
        self._pos = 0
        self._index = 0
        self._done = False
        self._error = None
        header = self._read(HEADER_SIZE)
        if not header.startswith(MAGIC[:len(header)]) or not header:
            self._fail('it is not an osbackup encrypted object')
        if len(header) < HEADER_SIZE:
            self._fail('it is truncated (its header is incomplete)')
        kid = header[len(MAGIC):len(MAGIC) + _KID]
        if kid != cipher.key_id:
            self._fail('it was encrypted with another key (key id %s; '
                       '[storage] encryption_key_file has key id %s)'
                       % (kid.hex(), cipher.key_id.hex()))
        self._header = header
        self._prefix = header[-_PREFIX:]

    def _read(self, n: int) -> bytes:
        out = b''
        while len(out) < n:
            data = self._raw.read(n - len(out))
            if not data:
                break
            out += data
        return out

    def _fail(self, why: str):
        self._error = exception.ArtifactCorrupt(
            'Artifact %s cannot be decrypted/authenticated: %s'
            % (self._location, why))
        raise self._error

    def _next_chunk(self) -> None:
        head = self._read(_RECORD.size)
        if len(head) < _RECORD.size:
            self._fail('it is truncated (it ends before its final chunk)')
        final, length = _RECORD.unpack(head)
        if final > 1 or not _TAG <= length <= CHUNK + _TAG:
            self._fail('chunk %d has a malformed header' % self._index)
        sealed = self._read(length)
        if len(sealed) < length:
            self._fail('it is truncated (chunk %d is cut short)'
                       % self._index)
        try:
            self._plain = self._aead.decrypt(
                self._prefix + _INDEX.pack(self._index), sealed,
                _aad(self._header, self._index, bool(final)))
        except InvalidTag:
            self._fail('chunk %d failed authentication (tampered, '
                       'truncated or reordered)' % self._index)
        self._pos = 0
        self._index += 1
        if final:
            if self._read(1):
                self._fail('it has data after its final chunk')
            self._done = True

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self._error is not None:
            raise self._error
        while self._pos >= len(self._plain) and not self._done:
            self._next_chunk()
        n = min(len(buf), len(self._plain) - self._pos)
        buf[:n] = self._plain[self._pos:self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def stored_size(plain_size: int) -> int:
    """Bytes an encrypted object of ``plain_size`` bytes takes in storage."""
    chunks = max(1, -(-plain_size // CHUNK))
    return HEADER_SIZE + plain_size + chunks * (_RECORD.size + _TAG)


class EncryptedStorage(base.Storage):
    """Any backend, with the objects it writes encrypted."""

    def __init__(self, inner: base.Storage, cipher: Cipher):
        super().__init__(inner.conf)
        self.inner = inner
        self.cipher = cipher
        self.name = inner.name

    def __getattr__(self, name):
        # Backend specifics (LocalStorage.path, ...) stay reachable.
        if name == 'inner':
            raise AttributeError(name)
        return getattr(self.inner, name)

    def open_writer(self, key: str) -> base.Writer:
        return EncryptingWriter(self.inner.open_writer(key + SUFFIX),
                                self.cipher)

    def open_reader(self, location: str):
        if not location.endswith(SUFFIX):
            return self.inner.open_reader(location)
        raw = self.inner.open_reader(location)
        try:
            return DecryptingReader(raw, self.cipher, location)
        except BaseException:
            raw.close()
            raise

    def delete(self, location: str) -> None:
        self.inner.delete(location)

    def exists(self, location: str) -> bool:
        return self.inner.exists(location)

    def list(self, prefix: str = ''):
        # Locations carry the .enc suffix already; sizes are stored bytes.
        return self.inner.list(prefix)

    def free_bytes(self) -> int | None:
        return self.inner.free_bytes()

    def direct_path(self, location: str) -> str | None:
        if location.endswith(SUFFIX):
            return None     # each read decrypts
        return self.inner.direct_path(location)

    def cleanup_partials(self, prefix: str = '') -> list[str]:
        return self.inner.cleanup_partials(prefix)

    def cleanup_orphans(self, max_age: float = base.LEFTOVER_AGE
                        ) -> list[str]:
        return self.inner.cleanup_orphans(max_age)


def wrap(conf, backend: base.Storage) -> base.Storage:
    """``backend``, encrypting if ``[storage] encryption_key_file`` is set."""
    cipher = Cipher.from_conf(conf)
    return backend if cipher is None else EncryptedStorage(backend, cipher)

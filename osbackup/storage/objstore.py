"""What the object-store backends (swift, s3) share.

Both store an artifact as one object when it fits in one part and as a
multipart object otherwise (a Swift Static Large Object, an S3 multipart
upload). The writer buffers one part at a time and uploads up to
``concurrency`` parts in the background, so memory stays near part size x
(concurrency + 1) however large the artifact. Nothing is visible under the
final name until the last request (the single PUT, the SLO manifest, the
CompleteMultipartUpload) succeeded; a failed or aborted write removes the
parts it uploaded.

Every request goes through ``Retrier``: a 5xx answer, a timeout or a
broken connection is retried with exponential back-off, re-sending only
that request (a part, a manifest, or a read resumed from where it broke
with a Range request). Other errors become one-line ``OsbackupError``
messages (credentials, permissions, missing objects, quota).

The writer records the sha256 of the stream with the object where the
API allows (single objects and SLO manifests) and the part size of S3
multipart uploads; ``ObjectReader`` re-checks the sha256, or else the
MD5-based ETag, and the length at the end of every read, raising
ArtifactCorrupt for an object changed or truncated in the store.
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import hashlib
import io
import random
import threading
import time
import typing

from oslo_log import log as logging

from osbackup import exception
from osbackup.storage import base

LOG = logging.getLogger(__name__)

BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
FREE_BYTES_TTL = 60
#: Objects asked for per listing request (both APIs cap it at 1000 or
#: 10000): a listing holds one page in memory, whatever the total.
LIST_PAGE = 1000


class Transient(Exception):
    """A failure worth retrying (5xx, timeout, broken connection)."""


@dataclasses.dataclass
class Failure:
    """What a backend makes of an exception: the error and whether to retry."""
    error: exception.OsbackupError
    transient: bool = False


def http_failure(status: int | None, what: str, detail: str,
                 credentials_hint: str, quota: bool = False) -> Failure:
    """The Failure of an HTTP ``status`` answered to ``what``.

    ``quota`` says the server named a quota as the reason (a 403 from Ceph
    RGW, a 413 from Swift).
    """
    detail = ' '.join((detail or '').split())[:300]
    suffix = ': %s' % detail if detail else ''
    if quota or status in (413, 507):
        return Failure(exception.InsufficientSpace(
            '%s failed: quota exceeded or no space left on the object '
            'store (HTTP %s)%s' % (what, status, suffix)))
    if status == 401:
        return Failure(exception.StorageError(
            '%s failed: the object store refused the credentials (HTTP '
            '401); check %s' % (what, credentials_hint)))
    if status == 403:
        return Failure(exception.StorageError(
            '%s failed: access denied (HTTP 403); the credentials of %s '
            'lack the permission%s' % (what, credentials_hint, suffix)))
    if status == 404:
        return Failure(exception.NotFound('%s failed: not found (HTTP 404)'
                                          % what))
    if status is not None and (status >= 500 or status in (408, 429)):
        return Failure(exception.StorageError(
            '%s failed: the object store answered HTTP %s%s'
            % (what, status, suffix)), transient=True)
    return Failure(exception.StorageError(
        '%s failed: HTTP %s%s' % (what, status, suffix)))


def connection_failure(what: str, exc: BaseException) -> Failure:
    return Failure(exception.StorageError(
        '%s failed: cannot reach the object store (%s)'
        % (what, ' '.join(str(exc).split())[:300] or type(exc).__name__)),
        transient=True)


class Retrier:
    """Run requests, retrying transient failures with back-off."""

    def __init__(self, retries: int,
                 classify: typing.Callable[[BaseException, str], Failure],
                 sleep: typing.Callable[[float], None] = time.sleep,
                 start: float = BACKOFF_START, cap: float = BACKOFF_MAX):
        self.retries = retries
        self.classify = classify
        self.sleep = sleep
        self.start = start
        self.cap = cap

    def failure(self, exc: BaseException, what: str) -> Failure:
        if isinstance(exc, exception.OsbackupError):
            return Failure(exc)
        return self.classify(exc, what)

    def delay(self, attempt: int) -> float:
        # Full back-off with jitter, so agents that failed together do
        # not retry together.
        return min(self.cap, self.start * 2 ** attempt) * \
            random.uniform(0.5, 1.0)

    def call(self, what: str, fn: typing.Callable, *args, **kwargs):
        """``fn(*args, **kwargs)``; raise an OsbackupError once it fails."""
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                failure = self.failure(exc, what)
                if not failure.transient or attempt >= self.retries:
                    raise failure.error from exc
                wait = self.delay(attempt)
                attempt += 1
                LOG.warning('%s; retry %d of %d in %.1f s',
                            failure.error.message, attempt, self.retries,
                            wait)
                self.sleep(wait)


def content_md5(digest: bytes) -> str:
    """The Content-MD5 header value of a binary MD5 digest."""
    return base64.b64encode(digest).decode()


class Upload(typing.Protocol):
    """One multipart upload in progress, as a backend runs it."""

    def put_part(self, number: int, data: bytes, md5: bytes) -> dict:
        """Upload part ``number`` (from 1); return what complete() needs."""

    def complete(self, parts: list[dict], sha256: str, size: int) -> None:
        """Make the object visible from its parts: the commit."""

    def abort(self) -> None:
        """Remove every part uploaded (or being uploaded) so far."""


class Target:
    """What ObjectWriter needs from a backend for one object."""

    def __init__(self, storage: 'ObjectStorage', key: str):
        self.storage = storage
        self.key = key
        self.location = storage.location(key)

    def put_whole(self, data: bytes, sha256: str, md5: bytes) -> None:
        """Store the object with a single request: the commit."""
        raise NotImplementedError

    def begin(self) -> Upload:
        """Start a multipart upload."""
        raise NotImplementedError


class ObjectWriter(base.Writer):
    """Stream an artifact into an object store in parts.

    Up to ``concurrency`` parts upload in background threads while the
    next one fills, so a writer holds at most part_size x (concurrency +
    1) bytes.
    """

    def __init__(self, target: Target, part_size: int, concurrency: int):
        self._target = target
        self.location = target.location
        self._part_size = part_size
        self._concurrency = concurrency
        self._buf = bytearray()
        self._sha = hashlib.sha256()
        self._size = 0
        self._upload = None
        self._pool = None
        # The stream's sha256 runs on a thread of its own, in part order,
        # so hashing overlaps the uploads instead of slowing the writer.
        self._hasher = None
        self._slots = threading.BoundedSemaphore(concurrency)
        self._futures: list[concurrent.futures.Future] = []
        self._state = 'open'

    def _check_open(self):
        if self._state != 'open':
            raise exception.StorageError('Write to %s after it %s'
                                         % (self.location, self._state))

    def write(self, data) -> int:
        self._check_open()
        n = memoryview(data).nbytes
        self._size += n
        self._buf += data
        try:
            # Keep at least one byte back: only commit knows whether a
            # full buffer is the whole object or its first part.
            while len(self._buf) > self._part_size:
                self._submit(self._take)
        except BaseException:
            self.abort()
            raise
        return n

    def _take(self) -> bytes:
        part = bytes(memoryview(self._buf)[:self._part_size])
        del self._buf[:self._part_size]
        return part

    def _submit(self, take: typing.Callable[[], bytes]) -> None:
        if self._upload is None:
            self._upload = self._target.begin()
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self._concurrency, thread_name_prefix='osbackup-upload')
            self._hasher = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix='osbackup-hash')
        self._raise_failed()
        # A free slot first, then the copy of the part: at most
        # concurrency parts exist beside the buffer.
        self._slots.acquire()
        number = len(self._futures) + 1
        try:
            part = take()
            hashed = self._hasher.submit(self._sha.update, part)
            future = self._pool.submit(self._put_part, number, part, hashed)
        except BaseException:
            self._slots.release()
            raise
        self._futures.append(future)

    def _put_part(self, number: int, data: bytes,
                  hashed: concurrent.futures.Future) -> dict:
        try:
            return self._upload.put_part(number, data,
                                         hashlib.md5(data).digest())
        finally:
            # The slot (and the part's memory) is free only once the part
            # is both sent and hashed.
            hashed.result()
            self._slots.release()

    def _raise_failed(self) -> None:
        for future in self._futures:
            if future.done() and future.exception() is not None:
                raise future.exception()

    def commit(self) -> str:
        self._check_open()
        try:
            data = bytes(self._buf)
            self._buf = bytearray()
            if self._upload is None:
                self._sha.update(data)
                self._target.put_whole(data, self._sha.hexdigest(),
                                       hashlib.md5(data).digest())
            else:
                self._submit(lambda: data)
                # Each part's future ends after its hash: all are hashed.
                parts = [f.result() for f in self._futures]
                self._upload.complete(parts, self._sha.hexdigest(),
                                      self._size)
        except BaseException:
            self.abort()
            raise
        self._state = 'committed'
        self._shutdown()
        return self.location

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._hasher.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        if self._state in ('committed', 'aborted'):
            return
        self._state = 'aborted'
        self._buf = bytearray()
        # Parts still uploading finish (or fail) first, so the clean-up
        # below sees every part there will ever be.
        self._shutdown()
        if self._upload is not None:
            try:
                self._upload.abort()
            except Exception as exc:
                LOG.warning('Could not remove the parts of the aborted '
                            'upload of %s: %s; prune removes them after a '
                            'day', self.location, exc)


@dataclasses.dataclass
class ObjectInfo:
    """What a GET says about the stored object."""
    size: int                       # of the whole object
    etag: str = ''                  # unquoted
    sha256: str = ''                # recorded at upload, when known
    part_size: int = 0              # of a multipart object, when known
    etag_kind: str = 'md5'          # md5 | s3-multipart | none


class Fetch(typing.Protocol):
    def __call__(self, offset: int, etag: str) -> tuple[ObjectInfo,
                                                        typing.Any]:
        """GET the object from ``offset`` (same ``etag`` if set).

        Returns its info and a body with ``read(n)`` and ``close()``.
        """


class _PartMD5:
    """MD5 of each part of an S3 multipart object, as its ETag is made."""

    def __init__(self, part_size: int):
        self.part_size = part_size
        self.digests = []
        self._md5 = hashlib.md5()
        self._left = part_size

    def update(self, data) -> None:
        view = memoryview(data)
        while len(view):
            take = min(self._left, len(view))
            self._md5.update(view[:take])
            view = view[take:]
            self._left -= take
            if not self._left:
                self.digests.append(self._md5.digest())
                self._md5 = hashlib.md5()
                self._left = self.part_size

    def etag(self) -> str:
        digests = list(self.digests)
        if self._left != self.part_size or not digests:
            digests.append(self._md5.digest())
        return s3_multipart_etag(digests)


def s3_multipart_etag(digests: list[bytes]) -> str:
    """The ETag S3 gives a multipart object with parts of these MD5s."""
    return '%s-%d' % (hashlib.md5(b''.join(digests)).hexdigest(),
                      len(digests))


class ObjectReader(io.RawIOBase):
    """Stream an object, resuming after a broken connection, and check it.

    At the end of the object it compares the length with the size the
    store announced, and the data with the recorded sha256 or else with
    the ETag; a mismatch raises ArtifactCorrupt.
    """

    def __init__(self, fetch: Fetch, location: str, retrier: Retrier):
        super().__init__()
        self._fetch = fetch
        self.location = location
        self._retrier = retrier
        self._info, self._body = retrier.call('Reading %s' % location,
                                              fetch, 0, '')
        self._pos = 0
        self._checked = False
        self._hash = self._checker(self._info)

    @staticmethod
    def _checker(info: ObjectInfo):
        if info.sha256:
            return hashlib.sha256()
        if info.etag_kind == 'md5' and info.etag:
            return hashlib.md5()
        if info.etag_kind == 's3-multipart' and info.part_size:
            return _PartMD5(info.part_size)
        return None

    def readable(self) -> bool:
        return True

    def _read_some(self, n: int) -> bytes:
        what = 'Reading %s' % self.location
        attempt = 0
        while True:
            try:
                return self._body.read(n)
            except Exception as exc:
                failure = self._retrier.failure(exc, what)
                if not failure.transient or \
                        attempt >= self._retrier.retries:
                    raise failure.error from exc
                wait = self._retrier.delay(attempt)
                attempt += 1
                LOG.warning('%s at byte %d; resuming there (retry %d of '
                            '%d in %.1f s)', failure.error.message,
                            self._pos, attempt, self._retrier.retries, wait)
                self._retrier.sleep(wait)
                self._resume()

    def _resume(self) -> None:
        self._close_body()
        info, self._body = self._retrier.call(
            'Reading %s from byte %d' % (self.location, self._pos),
            self._fetch, self._pos, self._info.etag)
        if info.etag != self._info.etag or info.size != self._info.size:
            raise exception.ArtifactCorrupt(
                'Artifact %s changed in the object store while it was '
                'read' % self.location)

    def readinto(self, buf) -> int:
        want = len(buf)
        if not want:
            return 0
        if self._pos >= self._info.size:
            self._verify()
            return 0
        data = self._read_some(min(want, self._info.size - self._pos))
        if not data:
            self._verify()
            return 0
        n = len(data)
        buf[:n] = data
        self._pos += n
        if self._hash is not None:
            self._hash.update(data)
        return n

    def _corrupt(self, why: str):
        raise exception.ArtifactCorrupt('Artifact %s is corrupt in the '
                                        'object store: %s'
                                        % (self.location, why))

    def _verify(self) -> None:
        if self._checked:
            return
        self._checked = True
        info = self._info
        if self._pos < info.size:
            self._corrupt('it ended after %d of its %d bytes'
                          % (self._pos, info.size))
        if self._body.read(1):
            self._corrupt('it is longer than the %d bytes announced'
                          % info.size)
        if self._hash is None:
            return
        if info.sha256:
            got, want = self._hash.hexdigest(), info.sha256
            kind = 'sha256'
        elif isinstance(self._hash, _PartMD5):
            got, want, kind = self._hash.etag(), info.etag, 'ETag'
        else:
            got, want, kind = self._hash.hexdigest(), info.etag, 'MD5'
        if got != want:
            self._corrupt('its %s is %s, %s was recorded at upload'
                          % (kind, got, want))

    def _close_body(self) -> None:
        try:
            self._body.close()
        except Exception:
            pass    # a broken connection fails its close too

    def close(self) -> None:
        if not self.closed:
            self._close_body()
        super().close()


class ObjectStorage(base.Storage):
    """Locations ``<scheme>//<container>/<key>`` in one container/bucket."""

    scheme = ''
    # Where the credentials are configured, for error messages.
    options_group = ''

    def __init__(self, conf, options, container: str, part_size: int,
                 concurrency: int):
        super().__init__(conf)
        self.options = options
        self.container = container
        self.part_size = part_size
        self.concurrency = concurrency
        self.retrier = Retrier(options.retries, self.classify)
        self._free = None   # (monotonic time, bytes or None)
        self.list_page = LIST_PAGE
        self._ready = False
        self._ready_lock = threading.Lock()

    # -- for the backends --------------------------------------------------

    def classify(self, exc: BaseException, what: str) -> Failure:
        """The Failure of a client library exception."""
        raise NotImplementedError

    def call(self, what: str, fn, *args, **kwargs):
        return self.retrier.call(what, fn, *args, **kwargs)

    def ensure_container(self) -> None:
        """Create the container/bucket when missing (once per process)."""

    def target(self, key: str) -> Target:
        raise NotImplementedError

    def fetch(self, key: str) -> Fetch:
        raise NotImplementedError

    # -- names -------------------------------------------------------------

    def location(self, key: str) -> str:
        return '%s//%s/%s' % (self.scheme, self.container, key)

    def check_key(self, key: str) -> str:
        if not key or key.startswith('/') or '\0' in key or \
                '\n' in key or any(p in ('', '.', '..')
                                   for p in key.split('/')):
            raise exception.InvalidInput('Bad storage key %r' % (key,))
        return key

    def key_of(self, location: str) -> str:
        """The object name of ``location``, refused unless it is ours."""
        head = '%s//%s/' % (self.scheme, self.container)
        if not isinstance(location, str) or not location.startswith(head):
            raise exception.InvalidInput(
                'Location %s is not inside the %s storage %s//%s'
                % (location, self.name, self.scheme, self.container))
        return self.check_key(location[len(head):])

    # -- the Storage API ---------------------------------------------------

    def _ensure_ready(self) -> None:
        with self._ready_lock:
            if not self._ready:
                self.ensure_container()
                self._ready = True

    def open_writer(self, key: str) -> base.Writer:
        self._ensure_ready()
        self._free = None
        return ObjectWriter(self.target(self.check_key(key)),
                            self.part_size, self.concurrency)

    def open_reader(self, location: str) -> typing.BinaryIO:
        key = self.key_of(location)
        try:
            return ObjectReader(self.fetch(key), location, self.retrier)
        except exception.NotFound:
            raise exception.NotFound('Artifact %s is missing' % location)

    def free_bytes(self) -> int | None:
        """Room left under the quotas, None without quota.

        Agents ask with every heartbeat: one answer is reused for
        FREE_BYTES_TTL seconds.
        """
        cached = self._free
        if cached is not None and \
                time.monotonic() - cached[0] < FREE_BYTES_TTL:
            return cached[1]
        try:
            free = self.quota_free_bytes()
        except exception.OsbackupError as exc:
            LOG.warning('Free space on %s is unknown: %s',
                        self.location(''), exc)
            free = None
        self._free = (time.monotonic(), free)
        return free

    def quota_free_bytes(self) -> int | None:
        return None

    def cleanup_partials(self, prefix: str = '') -> list[str]:
        """Remove leftovers of interrupted uploads under ``prefix``.

        Agents call this as they start; an unreachable store must not
        keep them from starting, so a failure is logged and left for the
        next start or prune.
        """
        # Whatever their age: no write of this host runs as its agent
        # starts (and the store's clock may run ahead of ours).
        return self._cleanup(prefix, float('inf'))

    def cleanup_orphans(self, max_age: float = base.LEFTOVER_AGE
                        ) -> list[str]:
        return self._cleanup('', time.time() - max_age)

    def _cleanup(self, prefix: str, before: float) -> list[str]:
        # 'ctl-1' must not match the keys of 'ctl-10'.
        prefix = prefix.rstrip('/') + '/' if prefix else ''
        try:
            return self.remove_orphans(prefix, before)
        except exception.OsbackupError as exc:
            LOG.warning('Leftovers of interrupted uploads were not '
                        'removed: %s', exc)
            return []

    def remove_orphans(self, prefix: str, before: float) -> list[str]:
        """Remove unfinished uploads under ``prefix`` started before."""
        raise NotImplementedError

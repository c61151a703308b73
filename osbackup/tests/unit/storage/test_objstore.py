"""The object-store logic shared by swift and s3, against fakes.

A real server cannot be made to fail a given request at will; these
tests cover retries, error mapping, the commit/abort sequence and resumed
reads. The backends themselves run against a real Swift in the
functional tests.
"""

import dataclasses
import hashlib
import io
import threading
import time

from osbackup import exception
from osbackup.storage import objstore
from osbackup.tests import base


class Flaky(Exception):
    pass


def classify(exc, what):
    if isinstance(exc, Flaky):
        return objstore.Failure(exception.StorageError('%s: flaky' % what),
                                transient=True)
    return objstore.Failure(exception.StorageError('%s: fatal' % what))


class RetrierTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.sleeps = []
        self.retrier = objstore.Retrier(3, classify, sleep=self.sleeps.append,
                                        start=1.0, cap=3.0)

    def failing(self, errors, result='done'):
        errors = list(errors)
        calls = []

        def fn(*args):
            calls.append(args)
            if errors:
                raise errors.pop(0)
            return result
        return fn, calls

    def test_transient_failures_are_retried_with_backoff(self):
        fn, calls = self.failing([Flaky(), Flaky(), Flaky()])
        self.assertEqual('done', self.retrier.call('Uploading x', fn, 1))
        self.assertEqual([(1,)] * 4, calls)
        # Doubling from 1 s, capped at 3 s, jittered down to half.
        for wait, top in zip(self.sleeps, (1.0, 2.0, 3.0)):
            self.assertTrue(top / 2 <= wait <= top, (wait, top))

    def test_gives_up_after_the_retries(self):
        fn, calls = self.failing([Flaky()] * 4)
        error = self.assertRaises(exception.StorageError, self.retrier.call,
                                  'Uploading x', fn)
        self.assertEqual('Uploading x: flaky', str(error))
        self.assertEqual(4, len(calls))
        self.assertEqual(3, len(self.sleeps))

    def test_other_errors_are_not_retried(self):
        fn, calls = self.failing([ValueError('no')])
        error = self.assertRaises(exception.StorageError, self.retrier.call,
                                  'Uploading x', fn)
        self.assertEqual('Uploading x: fatal', str(error))
        self.assertEqual(1, len(calls))
        self.assertEqual([], self.sleeps)

    def test_osbackup_errors_pass_unchanged(self):
        fn, _ = self.failing([exception.NotFound('gone')])
        error = self.assertRaises(exception.NotFound, self.retrier.call,
                                  'x', fn)
        self.assertEqual('gone', str(error))


class HTTPFailureTest(base.TestCase):

    def failure(self, status, detail='', quota=False):
        return objstore.http_failure(status, 'Uploading s3://b/k', detail,
                                     '[s3_storage] access_key', quota=quota)

    def test_mapping(self):
        cases = [
            (401, False, exception.StorageError, 'refused the credentials'),
            (403, False, exception.StorageError, 'access denied'),
            (404, False, exception.NotFound, 'not found'),
            (413, False, exception.InsufficientSpace, 'quota exceeded'),
            (507, False, exception.InsufficientSpace, 'quota exceeded'),
            (500, True, exception.StorageError, 'HTTP 500'),
            (503, True, exception.StorageError, 'HTTP 503'),
            (429, True, exception.StorageError, 'HTTP 429'),
            (400, False, exception.StorageError, 'HTTP 400'),
        ]
        for status, transient, cls, text in cases:
            failure = self.failure(status, 'some\nbody')
            self.assertIs(cls, type(failure.error), status)
            self.assertEqual(transient, failure.transient, status)
            self.assertIn(text, str(failure.error))
            self.assertNotIn('\n', str(failure.error))
            self.assertTrue(str(failure.error).startswith(
                'Uploading s3://b/k failed'))

    def test_403_naming_a_quota_is_insufficient_space(self):
        failure = self.failure(403, 'QuotaExceeded', quota=True)
        self.assertIsInstance(failure.error, exception.InsufficientSpace)

    def test_credentials_hint(self):
        self.assertIn('[s3_storage] access_key', str(self.failure(401).error))


class FakeUpload:
    def __init__(self, log, fail_part=None, gate=None):
        self.log = log
        self.fail_part = fail_part
        self.gate = gate
        self.parts = {}
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def put_part(self, number, data, md5):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if self.gate is not None:
                self.gate.wait(5)
            if number == self.fail_part:
                raise exception.StorageError('part %d failed' % number)
            assert md5 == hashlib.md5(data).digest()
            self.parts[number] = data
            self.log.append(('part', number, len(data)))
            return {'n': number}
        finally:
            with self.lock:
                self.running -= 1

    def complete(self, parts, sha256, size):
        self.log.append(('complete', [p['n'] for p in parts], sha256, size))

    def abort(self):
        self.log.append(('abort', sorted(self.parts)))


class FakeTarget:
    location = 'fake://c/k'

    def __init__(self, **upload_args):
        self.log = []
        self.upload_args = upload_args
        self.upload = None

    def put_whole(self, data, sha256, md5):
        self.log.append(('whole', len(data), sha256,
                         md5 == hashlib.md5(data).digest()))

    def begin(self):
        self.log.append(('begin',))
        self.upload = FakeUpload(self.log, **self.upload_args)
        return self.upload


class ObjectWriterTest(base.TestCase):

    def write(self, target, data, part=10, concurrency=2, step=3):
        writer = objstore.ObjectWriter(target, part, concurrency)
        for i in range(0, len(data), step):
            writer.write(data[i:i + step])
        return writer

    def test_up_to_one_part_is_a_single_put(self):
        for size in (0, 1, 10):
            target = FakeTarget()
            data = b'x' * size
            writer = self.write(target, data)
            self.assertEqual('fake://c/k', writer.commit())
            self.assertEqual([('whole', size, hashlib.sha256(
                data).hexdigest(), True)], target.log)

    def test_larger_is_multipart_committed_last(self):
        target = FakeTarget()
        data = bytes(range(256)) * 1 + b'tail'
        writer = self.write(target, data)
        self.assertNotIn('complete', [e[0] for e in target.log])
        writer.commit()
        parts = target.upload.parts
        self.assertEqual(data, b''.join(parts[n] for n in sorted(parts)))
        self.assertEqual([10] * 26, [len(parts[n]) for n in range(1, 27)])
        self.assertEqual(('complete', list(range(1, 27)),
                          hashlib.sha256(data).hexdigest(), len(data)),
                         target.log[-1])

    def test_failed_part_aborts_and_never_completes(self):
        target = FakeTarget(fail_part=2)
        writer = objstore.ObjectWriter(target, 10, 2)
        error = None
        try:
            for _ in range(10):
                writer.write(b'y' * 10)
            writer.commit()
        except exception.StorageError as exc:
            error = exc
        self.assertEqual('part 2 failed', str(error))
        kinds = [e[0] for e in target.log]
        self.assertNotIn('complete', kinds)
        self.assertEqual('abort', kinds[-1])
        self.assertRaises(exception.StorageError, writer.write, b'z')

    def test_abort_removes_the_uploaded_parts(self):
        target = FakeTarget()
        writer = self.write(target, b'z' * 35)
        # Parts upload in the background: an abort cancels those still
        # queued, so wait until the three are sent to see all removed.
        deadline = time.monotonic() + 5
        while len(target.upload.parts) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        writer.abort()
        writer.abort()
        self.assertEqual(('abort', [1, 2, 3]), target.log[-1])
        self.assertEqual(1, [e[0] for e in target.log].count('abort'))

    def test_context_manager_aborts_on_error(self):
        target = FakeTarget()
        with self.assertRaises(KeyError):
            with objstore.ObjectWriter(target, 10, 2) as writer:
                writer.write(b'q' * 25)
                raise KeyError('x')
        self.assertEqual('abort', target.log[-1][0])

    def test_concurrency_bounds_parts_in_flight(self):
        gate = threading.Event()
        target = FakeTarget(gate=gate)
        writer = objstore.ObjectWriter(target, 10, 2)
        done = threading.Event()

        def produce():
            for _ in range(6):
                writer.write(b'w' * 10)
            done.set()

        producer = threading.Thread(target=produce)
        producer.start()
        # Two parts upload, the next fills the buffer: the writer waits.
        self.assertFalse(done.wait(0.5))
        gate.set()
        producer.join(5)
        writer.commit()
        self.assertEqual(2, target.upload.most)


class FakeBody:
    def __init__(self, data, break_at=None):
        self.data = io.BytesIO(data)
        self.break_at = break_at
        self.closed = False

    def read(self, n):
        if self.break_at is not None and self.data.tell() >= self.break_at:
            raise Flaky('connection reset')
        if self.break_at is not None:
            n = min(n, self.break_at - self.data.tell())
        return self.data.read(n)

    def close(self):
        self.closed = True


class ObjectReaderTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.data = bytes(range(256)) * 40
        self.sleeps = []
        self.retrier = objstore.Retrier(3, classify, sleep=self.sleeps.append)
        self.fetches = []

    def fetcher(self, info, stored=None, breaks=(), changed_etag=None):
        stored = self.data if stored is None else stored
        breaks = list(breaks)

        def fetch(offset, etag):
            self.fetches.append((offset, etag))
            answer = info
            if offset and changed_etag:
                answer = dataclasses.replace(info, etag=changed_etag)
            limit = breaks.pop(0) - offset if breaks else None
            return answer, FakeBody(stored[offset:], limit)
        return fetch

    def info(self, **kw):
        values = dict(size=len(self.data), etag='e1',
                      sha256=hashlib.sha256(self.data).hexdigest())
        values.update(kw)
        return objstore.ObjectInfo(**values)

    def read(self, fetch, n=1000):
        reader = objstore.ObjectReader(fetch, 'fake://c/k', self.retrier)
        out = b''
        while True:
            chunk = reader.read(n)
            if not chunk:
                break
            out += chunk
        reader.close()
        return out

    def test_resumes_where_the_connection_broke(self):
        fetch = self.fetcher(self.info(), breaks=[3000, 7000])
        self.assertEqual(self.data, self.read(fetch))
        self.assertEqual([(0, ''), (3000, 'e1'), (7000, 'e1')], self.fetches)
        self.assertEqual(2, len(self.sleeps))

    def test_object_changed_between_reads(self):
        fetch = self.fetcher(self.info(), breaks=[3000], changed_etag='e2')
        error = self.assertRaises(exception.ArtifactCorrupt, self.read, fetch)
        self.assertIn('changed', str(error))

    def test_sha256_mismatch(self):
        bad = bytearray(self.data)
        bad[5000] ^= 1
        fetch = self.fetcher(self.info(), stored=bytes(bad))
        error = self.assertRaises(exception.ArtifactCorrupt, self.read, fetch)
        self.assertIn('sha256', str(error))
        self.assertIn('fake://c/k', str(error))

    def test_short_object(self):
        fetch = self.fetcher(self.info(), stored=self.data[:-10])
        error = self.assertRaises(exception.ArtifactCorrupt, self.read, fetch)
        self.assertIn('ended after', str(error))

    def test_md5_etag_checked_without_sha256(self):
        good = self.info(sha256='', etag=hashlib.md5(self.data).hexdigest())
        self.assertEqual(self.data, self.read(self.fetcher(good)))
        bad = self.info(sha256='', etag='0' * 32)
        self.assertRaises(exception.ArtifactCorrupt, self.read,
                          self.fetcher(bad))

    def test_multipart_etag_checked_from_the_part_size(self):
        parts = [self.data[i:i + 4096] for i in range(0, len(self.data),
                                                      4096)]
        etag = objstore.s3_multipart_etag(
            [hashlib.md5(p).digest() for p in parts])
        self.assertTrue(etag.endswith('-3'))
        good = self.info(sha256='', etag=etag, part_size=4096,
                         etag_kind='s3-multipart')
        self.assertEqual(self.data, self.read(self.fetcher(good), n=777))
        bad = self.info(sha256='', etag=etag, part_size=4000,
                        etag_kind='s3-multipart')
        self.assertRaises(exception.ArtifactCorrupt, self.read,
                          self.fetcher(bad))

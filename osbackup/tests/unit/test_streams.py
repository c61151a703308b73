"""WriteBehind: storage writes beside the producer, errors not lost."""

import hashlib
import io
import threading

import testtools
import zstandard

from osbackup import streams


class SlowSink(io.BytesIO):
    def __init__(self, fail_at=None):
        super().__init__()
        self.fail_at = fail_at
        self.writes = 0
        self.thread = None

    def write(self, data):
        self.writes += 1
        self.thread = threading.current_thread()
        if self.writes == self.fail_at:
            raise OSError(28, 'No space left on device')
        return super().write(data)


class WriteBehindTest(testtools.TestCase):

    def test_writes_arrive_in_order_from_another_thread(self):
        sink = SlowSink()
        hashing = streams.HashingWriter(sink)
        with streams.WriteBehind(hashing, depth=2) as behind:
            for i in range(100):
                behind.write(b'%05d' % i)
        self.assertEqual(b''.join(b'%05d' % i for i in range(100)),
                         sink.getvalue())
        self.assertIsNot(threading.current_thread(), sink.thread)
        self.assertEqual(500, hashing.size)

    def test_a_reused_buffer_is_copied(self):
        sink = SlowSink()
        buf = bytearray(b'aaaa')
        with streams.WriteBehind(sink) as behind:
            behind.write(memoryview(buf))
            buf[:] = b'bbbb'
            behind.write(buf)
        self.assertEqual(b'aaaabbbb', sink.getvalue())

    def test_sink_error_is_raised_by_a_later_write_or_close(self):
        behind = streams.WriteBehind(SlowSink(fail_at=3), depth=1)
        err = self.assertRaises(OSError, self._write_many, behind, 1000)
        self.assertEqual(28, err.errno)
        self.assertRaises(OSError, behind.close)

    def test_sink_error_on_the_last_write_is_raised_by_close(self):
        behind = streams.WriteBehind(SlowSink(fail_at=1))
        behind.write(b'x')
        self.assertRaises(OSError, behind.close)

    def test_producer_error_ends_the_thread_and_is_kept(self):
        behind = streams.WriteBehind(SlowSink())

        def produce():
            with behind:
                behind.write(b'x')
                raise ValueError('manifest refused')
        self.assertRaises(ValueError, produce)
        self.assertFalse(behind._thread.is_alive())

    @staticmethod
    def _write_many(behind, n):
        for _ in range(n):
            behind.write(b'data')


class CheckedChunksTest(testtools.TestCase):

    class Raw(io.BytesIO):
        closed_by_caller = False

        def close(self):
            self.closed_by_caller = True
            super().close()

    def stored(self, data: bytes):
        compressed = zstandard.ZstdCompressor().compress(data)
        return self.Raw(compressed), hashlib.sha256(compressed).hexdigest()

    def test_yields_the_content_and_closes_the_source(self):
        data = b'row\n' * 700000
        raw, sha = self.stored(data)
        self.assertEqual(data, b''.join(streams.checked_chunks(
            raw, sha, lambda actual: AssertionError(actual))))
        self.assertTrue(raw.closed_by_caller)

    def test_a_mismatch_is_raised_after_the_last_chunk(self):
        raw, sha = self.stored(b'data')
        got = []
        exc = self.assertRaises(ValueError, lambda: got.extend(
            streams.checked_chunks(raw, 'f' * 64, ValueError)))
        self.assertEqual([b'data'], got)
        self.assertEqual(sha, str(exc))
        self.assertTrue(raw.closed_by_caller)

    def test_an_undecompressable_stream_is_corrupt(self):
        compressed = zstandard.ZstdCompressor().compress(b'row\n' * 1000)
        mangled = compressed[:20] + bytes(64) + compressed[84:]
        raw = self.Raw(mangled)
        # Even with the catalogue's hash matching (a bad write), never
        # a zstd error half-way through a load.
        sha = hashlib.sha256(mangled).hexdigest()
        exc = self.assertRaises(ValueError, lambda: list(
            streams.checked_chunks(raw, sha, ValueError)))
        self.assertEqual(sha, str(exc))
        self.assertTrue(raw.closed_by_caller)

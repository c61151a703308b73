"""WriteBehind: storage writes beside the producer, errors not lost."""

import io
import threading

import testtools

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

"""The bandwidth cap on artifact writes."""

from osbackup.storage import throttle
from osbackup.tests import base


class Sink:
    def __init__(self):
        self.data = b''

    def write(self, data):
        self.data += data
        return len(data)

    def commit(self):
        return 'loc'

    def abort(self):
        pass


class ThrottleTest(base.TestCase):

    def test_rate_is_held_with_sleeps(self):
        now = [0.0]
        slept = []

        def sleep(seconds):
            slept.append(seconds)
            now[0] += seconds

        sink = Sink()
        writer = throttle.ThrottledWriter(sink, rate=1000,
                                          clock=lambda: now[0], sleep=sleep)
        for _ in range(10):
            writer.write(b'x' * 500)
        # 5000 bytes at 1000 B/s take 5 s of (simulated) time.
        self.assertAlmostEqual(5.0, now[0])
        self.assertEqual(5000, len(sink.data))
        self.assertEqual('loc', writer.commit())

    def test_no_limit_returns_storage_unchanged(self):
        self.flags(bandwidth_limit=0, group='agent')
        storage = object()
        self.assertIs(storage, throttle.wrap(self.cfg.conf, storage))
        self.flags(bandwidth_limit=2, group='agent')
        wrapped = throttle.wrap(self.cfg.conf, storage)
        self.assertEqual(2 * 1024 * 1024, wrapped._rate)

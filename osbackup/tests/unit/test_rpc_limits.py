"""The oslo.messaging limits osbackup guards against (shared/MESSAGING.md)."""

import threading
import time

from oslo_config import cfg
from oslo_messaging._drivers import impl_rabbit

from osbackup.conductor import dispatch
from osbackup.db import api
from osbackup import rpc
from osbackup import states
from osbackup.tests import base


class SenderPoolTest(base.TestCase):

    def _rabbit_pool(self, size):
        # Through the fixture: unregistered again after the test.
        self.cfg.register_opts(impl_rabbit.rabbit_opts,
                               group='oslo_messaging_rabbit')
        self.flags(group='oslo_messaging_rabbit', rpc_conn_pool_size=size)

    def test_sender_threads_fit_beside_the_rpc_threads(self):
        self._rabbit_pool(30)
        self.assertEqual(8, rpc.fit_sender_pool(self.cfg.conf, 8, 8))
        self.assertEqual(22, rpc.fit_sender_pool(self.cfg.conf, 40, 8))

    def test_a_tiny_pool_still_leaves_one_sender(self):
        self._rabbit_pool(4)
        self.assertEqual(1, rpc.fit_sender_pool(self.cfg.conf, 8, 8))

    def test_without_rabbit_one_thread_sends(self):
        self.assertEqual(1, rpc.fit_sender_pool(cfg.ConfigOpts(), 8, 8))


class GlobalConfigTest(base.TestCase):

    def test_a_private_config_object_is_refused_clearly(self):
        # oslo.messaging 18 only knows its tracing options on cfg.CONF.
        private = cfg.ConfigOpts()
        err = self.assertRaises(TypeError, rpc.init, private, 'fake:/')
        self.assertIn('global', str(err))
        self.assertIsNone(rpc.TRANSPORT)


class SlowAgentAPI:
    """Casts that block like a publisher confirm; counts overlap."""

    def __init__(self, unreachable=()):
        self.unreachable = unreachable
        self.lock = threading.Lock()
        self.active = self.most = 0
        self.sent = []

    def run_task(self, ctxt, host, task):
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(0.02)
            if host in self.unreachable:
                import oslo_messaging as messaging
                raise messaging.MessageUndeliverable(
                    Exception('no route'), 'osbackup', host, None)
            with self.lock:
                self.sent.append(task['host'])
        finally:
            with self.lock:
                self.active -= 1


class ParallelDispatchTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cat = api.Catalogue('sqlite:///%s/c.sqlite' % self.state_dir)
        self.cat.sync()
        self.failed = []

    def _dispatcher(self, agent_api, threads):
        d = dispatch.Dispatcher(self.cfg.conf, self.cat, agent_api,
                                threads=threads)
        self.addCleanup(d.stop)
        d.on_failed = lambda *args: self.failed.append(
            (args, len(agent_api.sent)))
        return d

    def _wave(self, n):
        return [dict(kind='backup', host='h%d' % i, service='nova',
                     params={}) for i in range(n)]

    def test_casts_overlap_and_all_are_sent(self):
        api_ = SlowAgentAPI()
        tasks = self._dispatcher(api_, 4).wave(self._wave(12))
        self.assertEqual(12, len(tasks))
        self.assertEqual(sorted('h%d' % i for i in range(12)),
                         sorted(api_.sent))
        self.assertGreater(api_.most, 1)
        self.assertLessEqual(api_.most, 4)

    def test_one_thread_sends_in_order(self):
        api_ = SlowAgentAPI()
        self._dispatcher(api_, 1).wave(self._wave(5))
        self.assertEqual(['h%d' % i for i in range(5)], api_.sent)
        self.assertEqual(1, api_.most)

    def test_undeliverable_tasks_fail_after_the_whole_wave(self):
        api_ = SlowAgentAPI(unreachable=('h1', 'h6'))
        tasks = self._dispatcher(api_, 4).wave(self._wave(8))
        ids = {t['host']: t['id'] for t in tasks}
        self.assertEqual([ids['h1'], ids['h6']],
                         sorted((a[0] for a, _ in self.failed),
                                key=[ids['h1'], ids['h6']].index))
        for args, sent_before in self.failed:
            self.assertEqual(states.FAILED, args[1])
            self.assertIn('not listening', args[3])
            # Judged only once every other task of the wave was sent.
            self.assertEqual(6, sent_before)

"""The CLI's bounded first connection to the broker (issue 20.3)."""

import contextlib
import threading
import time

from osbackup import exception
from osbackup.manage import broker
from osbackup.tests import base


class _Driver:
    """Stands in for an AMQP driver's connection pool."""

    def __init__(self, connect):
        self._connect = connect

    @contextlib.contextmanager
    def _get_connection(self):
        self._connect()
        yield


class _Transport:
    def __init__(self, connect):
        self._driver = _Driver(connect)


class MaskTest(base.TestCase):

    def test_passwords_are_masked(self):
        self.assertEqual('rabbit://guest:***@h:5672/v',
                         broker.mask_url('rabbit://guest:s3cr:et@h:5672/v'))
        self.assertEqual(
            'rabbit://a:***@h1:5672,b:***@h2:5672/',
            broker.mask_url('rabbit://a:p1@h1:5672,b:p2@h2:5672/'))
        self.assertEqual('rabbit://h:5672/',
                         broker.mask_url('rabbit://h:5672/'))


class ConnectTest(base.TestCase):

    def test_gives_up_after_the_timeout_naming_the_broker(self):
        released = threading.Event()
        self.addCleanup(released.set)

        def never():
            # What the rabbit driver does with a wrong port: retry, log.
            import logging
            log = logging.getLogger(broker._DRIVER_LOGGER)
            log.error('Connection failed: %s (retrying in %s seconds)',
                      '[Errno 111] Connection refused', 1.0)
            released.wait(30)

        start = time.monotonic()
        err = self.assertRaises(
            exception.ConductorUnavailable, broker.connect,
            _Transport(never), 'rabbit://guest:pw@127.0.0.1:1/', 0.5)
        self.assertLess(time.monotonic() - start, 5)
        self.assertIn('rabbit://guest:***@127.0.0.1:1/', err.message)
        self.assertIn('within', err.message)
        self.assertIn('Connection refused', err.message)
        self.assertNotIn('pw', err.message)

    def test_an_immediate_refusal_is_reported_at_once(self):
        def refused():
            raise OSError('ACCESS_REFUSED')

        err = self.assertRaises(
            exception.ConductorUnavailable, broker.connect,
            _Transport(refused), 'rabbit://u:p@h/', 30)
        self.assertIn('ACCESS_REFUSED', err.message)
        self.assertNotIn('within', err.message)

    def test_connected(self):
        broker.connect(_Transport(lambda: None), 'rabbit://h/', 5)

    def test_in_memory_transport_needs_no_connection(self):
        broker.connect(object(), 'fake:/', 5)

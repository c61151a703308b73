"""Signed RPC: seals, their checks, and the RPC layer over the fake bus."""

import os
import threading
import time
from unittest import mock

import fixtures
import oslo_messaging as messaging

from osbackup import keyfile
from osbackup import rpc
from osbackup import signing
from osbackup.tests import base

KEY = b'k' * 64


def _signer(key=KEY, sender='node1'):
    return signing.Signer(key, sender, 3600)


class SignerTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.signer = _signer()
        self.args = {'task': {'id': 't1', 'host': 'cmp1', 'params': {
            'paths': ['/etc/nova'], 'n': 1.5}}}
        self.seal = self.signer.seal('run_task', self.args,
                                     'osbackup-agent', 'cmp1', '1.0')

    def check(self, seal=None, method='run_task', args=None, version='1.0',
              topic='osbackup-agent', server='cmp1', signer=None):
        (signer or _signer()).check(
            self.seal if seal is None else seal, method,
            self.args if args is None else args, version, topic, server)

    def rejected(self, **kw):
        return self.assertRaises(signing.MessageRejected, self.check,
                                 **kw).message

    def test_genuine_message_passes_once(self):
        receiver = _signer()
        self.check(signer=receiver)
        self.assertIn('replayed', self.assertRaises(
            signing.MessageRejected, self.check, signer=receiver).message)

    def test_seal_covers_every_argument_in_any_key_order(self):
        reordered = {'task': dict(reversed(list(self.args['task'].items())))}
        self.check(args=reordered)
        changed = {'task': dict(self.args['task'], host='ctl1')}
        self.assertIn('bad signature', self.rejected(args=changed))
        nested = {'task': dict(self.args['task'],
                               params={'paths': ['/etc/shadow'], 'n': 1.5})}
        self.assertIn('bad signature', self.rejected(args=nested))
        extra = dict(self.args, evil=True)
        self.assertIn('bad signature', self.rejected(args=extra))

    def test_what_json_changes_on_the_way_still_verifies(self):
        args = {'sizes': {2: 'a', 10: 'b'}, 'pair': ('x', 1)}
        seal = self.signer.seal('m', args, 'osbackup-agent', 'cmp1', '1.0')
        received = {'sizes': {'2': 'a', '10': 'b'}, 'pair': ['x', 1]}
        _signer().check(seal, 'm', received, '1.0', 'osbackup-agent',
                        'cmp1')
        reply = self.signer.seal_reply('n', {3: [1.5, None], 20: 'x'})
        self.assertEqual({'3': [1.5, None], '20': 'x'}, _signer().open_reply(
            'n', {signing.REPLY_KEY: {'3': [1.5, None], '20': 'x'},
                  'mac': reply['mac']}))

    def test_seal_covers_method_and_version(self):
        self.assertIn('bad signature', self.rejected(method='heartbeat'))
        self.assertIn('bad signature', self.rejected(version='1.1'))

    def test_seal_fields_cannot_be_edited(self):
        for field, value in (('exp', self.seal['exp'] + 9999),
                             ('server', None), ('sender', 'ctl1'),
                             ('nonce', 'f' * 32)):
            forged = dict(self.seal, **{field: value})
            self.assertIn('bad signature', self.rejected(seal=forged))

    def test_wrong_receiver_is_refused(self):
        self.assertIn('addressed to osbackup-agent.cmp1',
                      self.rejected(server='cmp2'))
        self.assertIn('addressed to', self.rejected(
            topic='osbackup-conductor'))

    def test_unsigned_malformed_and_other_key(self):
        self.assertIn('unsigned', self.rejected(seal='not a seal'))
        self.assertIn('unsigned', self.assertRaises(
            signing.MessageRejected, _signer().check, None, 'run_task',
            self.args, '1.0', 'osbackup-agent', 'cmp1').message)
        self.assertIn('malformed', self.rejected(
            seal=dict(self.seal, iat='yesterday')))
        other = _signer(b'o' * 64).seal('run_task', self.args,
                                        'osbackup-agent', 'cmp1', '1.0')
        message = self.rejected(seal=other)
        self.assertIn('another key', message)
        self.assertIn(keyfile.key_id(b'o' * 64), message)

    def test_expired_and_future_messages(self):
        now = time.time()
        with mock.patch.object(time, 'time', return_value=now - 3700):
            old = self.signer.seal('run_task', self.args, 'osbackup-agent',
                                   'cmp1', '1.0')
        self.assertIn('expired', self.rejected(seal=old))
        with mock.patch.object(time, 'time', return_value=now + 600):
            future = self.signer.seal('run_task', self.args,
                                      'osbackup-agent', 'cmp1', '1.0')
        self.assertIn('future', self.rejected(seal=future))
        # Small clock differences are tolerated.
        with mock.patch.object(time, 'time', return_value=now + 20):
            skewed = self.signer.seal('run_task', self.args,
                                      'osbackup-agent', 'cmp1', '1.0')
        self.check(seal=skewed)

    def test_genuine_message_refused_for_its_time_carries_the_offset(self):
        now = time.time()
        with mock.patch.object(time, 'time', return_value=now + 300):
            ahead = self.signer.seal('run_task', self.args,
                                     'osbackup-agent', 'cmp1', '1.0')
        exc = self.assertRaises(signing.ClockRejected, self.check,
                                seal=ahead)
        self.assertAlmostEqual(300, exc.offset, delta=1.5)
        self.assertIn('clock skew of +300 s', exc.message)
        # A forged one is refused for its signature, with no offset.
        forged = dict(ahead, sender='ctl9')
        exc = self.assertRaises(signing.MessageRejected, self.check,
                                seal=forged)
        self.assertNotIsInstance(exc, signing.ClockRejected)

    def test_clock_offset_of_a_seal(self):
        self.assertEqual(-2.0, signing.clock_offset({'iat': 100}, 102.5))
        self.assertIsNone(signing.clock_offset({'iat': 'x'}, 1.0))
        self.assertIsNone(signing.clock_offset(None, 1.0))

    def test_a_sender_cannot_claim_a_huge_lifetime(self):
        seal = self.signer.seal('run_task', self.args, 'osbackup-agent',
                                'cmp1', '1.0', ttl=signing.MAX_TTL + 1)
        self.assertIn('over the limit', self.rejected(seal=seal))

    def test_replies_are_bound_to_their_request(self):
        reply = self.signer.seal_reply('n1', {'id': 4})
        self.assertEqual({'id': 4}, _signer().open_reply('n1', reply))
        self.assertRaises(signing.MessageRejected, _signer().open_reply,
                          'n2', reply)
        forged = dict(reply, **{signing.REPLY_KEY: {'id': 5}})
        self.assertRaises(signing.MessageRejected, _signer().open_reply,
                          'n1', forged)
        self.assertRaises(signing.MessageRejected, _signer().open_reply,
                          'n1', {'id': 4})

    def test_nonce_cache_forgets_expired_nonces(self):
        cache = signing.NonceCache()
        self.assertTrue(cache.add('a', time.time() - 1))
        self.assertTrue(cache.add('b', time.time() + 100))
        self.assertFalse(cache.add('b', time.time() + 100))
        with mock.patch.object(time, 'time',
                               return_value=time.time() + 50):
            cache.add('c', time.time() + 100)
        self.assertEqual(2, len(cache))

    def test_no_key_derives_one_from_the_broker_credentials(self):
        self.flags(rpc_signing_key_file=None)
        self.flags(transport_url='rabbit://u:secret@h1:5672/osb')
        with mock.patch.object(signing.LOG, 'warning') as warn:
            one = signing.Signer.from_conf(self.cfg.conf, False)
        self.assertIn('openssl rand -hex 32', warn.call_args[0][1])
        self.assertFalse(one.ephemeral)
        # Every node with the same credentials derives the same key...
        self.assertEqual(one.key_id, signing.Signer.from_conf(
            self.cfg.conf, False).key_id)
        # ...and other credentials give another key.
        self.flags(transport_url='rabbit://u:other@h1:5672/osb')
        self.assertNotEqual(one.key_id, signing.Signer.from_conf(
            self.cfg.conf, False).key_id)

    def test_in_process_key_is_random(self):
        self.flags(rpc_signing_key_file=None)
        signer = signing.Signer.from_conf(self.cfg.conf, True)
        self.assertTrue(signer.ephemeral)
        self.assertNotEqual(signer.key_id, signing.Signer.from_conf(
            self.cfg.conf, True).key_id)


class KeyFileTest(base.TestCase):

    def _write(self, data, mode=0o600):
        path = os.path.join(self.state_dir, 'key')
        with open(path, 'wb') as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def test_good_key(self):
        path = self._write(b'ab' * 32 + b'\n')
        self.assertEqual(b'ab' * 32, keyfile.load(path, 'opt'))
        self.flags(rpc_signing_key_file=path)
        self.assertFalse(signing.Signer.from_conf(self.cfg.conf,
                                                  False).ephemeral)

    def test_bad_keys(self):
        err = self.assertRaises(keyfile.KeyFileError, keyfile.load,
                                self._write(b'ab' * 32, 0o644), 'opt')
        self.assertIn('chmod 600', err.message)
        err = self.assertRaises(keyfile.KeyFileError, keyfile.load,
                                self._write(b'short'), 'opt')
        self.assertIn('at least 32', err.message)
        err = self.assertRaises(keyfile.KeyFileError, keyfile.load,
                                os.path.join(self.state_dir, 'nope'), 'opt')
        self.assertIn('openssl rand', err.message)
        link = os.path.join(self.state_dir, 'link')
        os.symlink(self._write(b'ab' * 32), link)
        self.assertRaises(keyfile.KeyFileError, keyfile.load, link, 'opt')


class Endpoint:
    target = messaging.Target(version='1.0')

    def __init__(self):
        self.calls = []
        self.event = threading.Event()

    def hello(self, context, name, data=None):
        self.calls.append((name, data))
        self.event.set()
        return {'hello': name}


class SignedRPCTest(base.TestCase):
    """Client, server and dispatcher over oslo.messaging's fake driver."""

    def setUp(self):
        super().setUp()
        rpc.set_defaults(self.cfg.conf)
        self.flags(host='node1')
        rpc.init(self.cfg.conf, url='fake:/')
        self.addCleanup(rpc.cleanup)
        self.endpoint = Endpoint()
        self.server = rpc.get_server('test-topic', 'node1', [self.endpoint])
        self.server.start()
        self.addCleanup(self.server.wait)
        self.addCleanup(self.server.stop)
        self.client = rpc.get_client('test-topic', '1.0', timeout=5)
        self.security = self.useFixture(
            fixtures.FakeLogger(name='osbackup.security'))

    def _raw(self):
        """A plain oslo.messaging client: no seal, like an attacker's."""
        return messaging.get_rpc_client(
            rpc.TRANSPORT, messaging.Target(topic='test-topic',
                                            version='1.0'),
            serializer=rpc.ContextSerializer(rpc.SIGNER))

    def _wait_rejected(self, count=1):
        deadline = time.monotonic() + 5
        while self.security.output.count('SECURITY') < count:
            self.assertLess(time.monotonic(), deadline,
                            'no security event logged')
            time.sleep(0.01)

    def test_signed_call_and_cast_are_dispatched(self):
        self.assertEqual({'hello': 'a'}, self.client.call(
            rpc.admin_context(), 'hello', name='a'))
        self.client.prepare(server='node1').cast(rpc.admin_context(),
                                                 'hello', name='b',
                                                 data=[1, 2.5, 'x'])
        self.assertTrue(self.endpoint.event.wait(5))
        deadline = time.monotonic() + 5
        while len(self.endpoint.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual([('a', None), ('b', [1, 2.5, 'x'])],
                         self.endpoint.calls)
        self.assertEqual('', self.security.output)

    def test_unsigned_cast_is_logged_and_never_dispatched(self):
        self._raw().prepare(server='node1').cast(rpc.admin_context(),
                                                 'hello', name='evil')
        self._wait_rejected()
        self.assertIn("rejected RPC message 'hello'", self.security.output)
        self.assertIn('unsigned', self.security.output)
        self.assertEqual([], self.endpoint.calls)

    def test_unsigned_call_gets_the_reason_not_a_timeout(self):
        err = self.assertRaises(signing.MessageRejected,
                                self._raw().prepare(timeout=5).call,
                                rpc.admin_context(), 'hello', name='evil')
        self.assertIn('unsigned', err.message)
        self.assertEqual([], self.endpoint.calls)

    def test_replayed_and_altered_messages_are_rejected(self):
        cctxt = self.client.prepare(server='node1')
        sealed = cctxt._sealed(rpc.admin_context(), 'hello', {'name': 'a'})
        raw = self._raw().prepare(server='node1')
        raw.cast(sealed, 'hello', name='a')
        self.assertTrue(self.endpoint.event.wait(5))
        raw.cast(sealed, 'hello', name='a')
        self._wait_rejected()
        self.assertIn('replayed', self.security.output)
        fresh = cctxt._sealed(rpc.admin_context(), 'hello', {'name': 'a'})
        raw.cast(fresh, 'hello', name='b')
        self._wait_rejected(2)
        self.assertIn('bad signature', self.security.output)
        self.assertEqual([('a', None)], self.endpoint.calls)

    def test_message_for_another_server_is_rejected(self):
        sealed = self.client.prepare(server='node2')._sealed(
            rpc.admin_context(), 'hello', {'name': 'a'})
        self._raw().prepare(server='node1').cast(sealed, 'hello', name='a')
        self._wait_rejected()
        self.assertIn('addressed to test-topic.node2', self.security.output)
        self.assertEqual([], self.endpoint.calls)

    def test_forged_reply_is_refused(self):
        with mock.patch.object(rpc.SIGNER, 'seal_reply',
                               side_effect=lambda nonce, result: result):
            err = self.assertRaises(signing.MessageRejected,
                                    self.client.call, rpc.admin_context(),
                                    'hello', name='a')
        self.assertIn('not signed', err.message)

    def test_short_lived_messages(self):
        sealed = self.client.prepare()._sealed(rpc.admin_context(),
                                               'heartbeat', {})
        seal = sealed[signing.SEAL_KEY]
        self.assertEqual(120, seal['exp'] - seal['iat'])
        sealed = self.client.prepare()._sealed(rpc.admin_context(),
                                               'task_finished', {})
        seal = sealed[signing.SEAL_KEY]
        self.assertEqual(3600, seal['exp'] - seal['iat'])

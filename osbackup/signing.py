"""Signed RPC messages: every request and reply carries an HMAC-SHA256 seal.

oslo.messaging authenticates nothing: whoever can publish to osbackup's
exchange could make a root agent restore anything anywhere. So each
request is sealed by its sender and checked by its receiver before it is
dispatched (see rpc.py for where):

* the seal is HMAC-SHA256, under a key derived from ``[DEFAULT]
  rpc_signing_key_file``, over the canonical JSON of the method, its API
  version, **all** its arguments, the target (topic and server), the
  sender, the issue and expiry times and a random nonce;
* it travels in the message context (``osbackup_seal``), beside the
  arguments it covers;
* the receiver recomputes it from the message as received, then checks
  the target is itself, the expiry has not passed and the nonce was never
  seen (nonces are remembered until their message expires), in that
  order, so an unauthenticated message cannot fill the nonce cache;
* the reply to a call is sealed too, bound to the request's nonce, so a
  reply cannot be forged or replayed onto another request.

A rejected message is logged as a security event and never dispatched.
The shared key authenticates "an osbackup service of this cloud", not one
node: per-node keys are future work (see README "Faults and trust").
"""

import hashlib
import hmac
import json
import os
import threading
import time

from oslo_log import log as logging
import oslo_messaging as messaging
from oslo_serialization import jsonutils

from osbackup import exception
from osbackup import keyfile

LOG = logging.getLogger(__name__)

SEAL_KEY = 'osbackup_seal'
REPLY_KEY = 'osbackup_sealed_reply'
FORMAT = 1
#: Clock difference tolerated between sender and receiver (seconds).
MAX_SKEW = 60
#: Longest lifetime a receiver accepts, whatever the sender claims.
MAX_TTL = 86400
_PURGE_INTERVAL = 10
_FIELDS = {'v': int, 'kid': str, 'method': str, 'topic': str,
           'sender': str, 'iat': int, 'exp': int, 'nonce': str, 'mac': str}


class MessageRejected(exception.OsbackupError):
    """A message failed its signature, target, expiry or replay check."""

    code = 'message_rejected'


class ClockRejected(MessageRejected):
    """A genuine message (valid seal) refused only for its time.

    ``offset``: the sender's clock minus the receiver's, in seconds, as
    far as one message tells (its delivery delay counts against it).
    """

    code = 'clock_skew'

    def __init__(self, message: str, offset: float | None = None):
        super().__init__(message, offset=offset)
        self.offset = offset


def clock_offset(seal, now: float | None = None) -> float | None:
    """The sender's clock minus this node's, from one received seal.

    ``iat`` is whole seconds (rounded down, hence the half second), so
    this is exact to half a second, less the time the message took to
    arrive. None without a usable seal.
    """
    if not isinstance(seal, dict) or not isinstance(seal.get('iat'), int):
        return None
    return round(seal['iat'] + 0.5 - (time.time() if now is None else now),
                 1)


def canonical(value) -> bytes:
    """The bytes a seal covers: sorted, compact JSON of the value as sent.

    oslo.messaging encodes messages with jsonutils; decoding that first
    makes the sender see what the receiver will (tuples become lists,
    integer keys strings, which then sort as strings on both sides).
    """
    sent = json.loads(jsonutils.dumps(value))
    return json.dumps(sent, sort_keys=True, separators=(',', ':')).encode()


class NonceCache:
    """Nonces seen, each kept until its message has expired anyway."""

    def __init__(self):
        self._seen = {}
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def add(self, nonce: str, until: float) -> bool:
        """Remember ``nonce``; False when it was already there."""
        now = time.time()
        with self._lock:
            if now >= self._next_purge:
                self._seen = {n: t for n, t in self._seen.items() if t > now}
                self._next_purge = now + _PURGE_INTERVAL
            if nonce in self._seen:
                return False
            self._seen[nonce] = until
            return True

    def __len__(self):
        return len(self._seen)


def derived_key(conf) -> bytes:
    """A key every node sharing the broker credentials computes alike.

    The fallback when no key file is configured: it keeps a fleet set up
    with only a transport_url working and still refuses messages from
    anyone without the broker credentials. A dedicated key file is the
    real protection, and the warning says so.
    """
    url = messaging.TransportURL.parse(conf)
    secret = '|'.join([url.virtual_host or ''] + sorted(
        '%s:%s' % (h.username or '', h.password or '') for h in url.hosts))
    return hashlib.sha256(b'osbackup rpc key from transport_url\0' +
                          secret.encode()).digest()


class Signer:
    """Seal and check messages with one shared key."""

    def __init__(self, key: bytes, sender: str, ttl: int,
                 ephemeral: bool = False):
        self._key = keyfile.derive(key, b'rpc signing')
        self.key_id = keyfile.key_id(key)
        self.sender = sender
        self.ttl = ttl
        self.ephemeral = ephemeral
        self.nonces = NonceCache()

    @classmethod
    def from_conf(cls, conf, ephemeral_allowed: bool) -> 'Signer':
        """The key of ``[DEFAULT] rpc_signing_key_file``.

        Without one, an all-in-one process (``ephemeral_allowed``: its
        messages never leave it) makes up a random key; a process on a
        real broker refuses to start.
        """
        path = conf.rpc_signing_key_file
        if path:
            key = keyfile.load(path, '[DEFAULT] rpc_signing_key_file')
            return cls(key, conf.host, conf.rpc_message_ttl)
        if ephemeral_allowed:
            return cls(os.urandom(32), conf.host, conf.rpc_message_ttl,
                       ephemeral=True)
        LOG.warning(
            '[DEFAULT] rpc_signing_key_file is not set: RPC messages are '
            'signed with a key derived from the transport_url '
            'credentials, so anyone holding those broker credentials can '
            'forge them. Give the conductor, every agent and '
            'osbackup-manage a dedicated key file (%s).',
            keyfile.HOW_TO_CREATE)
        return cls(derived_key(conf), conf.host, conf.rpc_message_ttl)

    # -- requests --------------------------------------------------------

    def _mac(self, fields: dict, args: dict) -> str:
        body = dict(fields, args=args)
        body.pop('mac', None)
        return hmac.new(self._key, b'osbackup rpc request\0' +
                        canonical(body), 'sha256').hexdigest()

    def seal(self, method: str, args: dict, topic: str,
             server: str | None, version: str | None,
             ttl: int | None = None) -> dict:
        """The seal of one request, to put in its context."""
        now = int(time.time())
        fields = {'v': FORMAT, 'kid': self.key_id, 'method': method,
                  'version': version, 'topic': topic, 'server': server,
                  'sender': self.sender, 'iat': now,
                  'exp': now + (ttl or self.ttl),
                  'nonce': os.urandom(16).hex()}
        fields['mac'] = self._mac(fields, args)
        return fields

    def check(self, seal, method, args, version, topic: str,
              server: str) -> None:
        """Raise MessageRejected unless the message may be dispatched.

        ``method``, ``args`` and ``version`` are as received; ``topic``
        and ``server`` are where this receiver listens.
        """
        if not isinstance(seal, dict):
            raise MessageRejected('unsigned message: only osbackup '
                                  'services holding the RPC signing key '
                                  'may send')
        if any(not isinstance(seal.get(k), t) for k, t in _FIELDS.items()) \
                or seal['v'] != FORMAT:
            raise MessageRejected('malformed seal')
        if seal['kid'] != self.key_id:
            raise MessageRejected(
                'signed with another key (key id %s, this node uses %s): '
                'forged, or [DEFAULT] rpc_signing_key_file differs between '
                'nodes' % (seal['kid'][:12], self.key_id))
        received = dict(seal, method=method, version=version)
        if not isinstance(args, dict) or not hmac.compare_digest(
                seal['mac'], self._mac(received, args)):
            raise MessageRejected('bad signature: the message was forged '
                                  'or altered on the way')
        if seal['topic'] != topic or seal.get('server') not in (
                None, server):
            raise MessageRejected('addressed to %s.%s, this is %s.%s'
                                  % (seal['topic'], seal.get('server'),
                                     topic, server))
        now = time.time()
        if seal['exp'] - seal['iat'] > MAX_TTL:
            raise MessageRejected('lifetime of %d s is over the limit of %d'
                                  % (seal['exp'] - seal['iat'], MAX_TTL))
        offset = clock_offset(seal, now)
        if seal['iat'] > now + MAX_SKEW:
            raise ClockRejected(
                'issued %d s in the future: clock skew of %+.0f s, over the '
                '%d s allowed: check the clocks (NTP)'
                % (seal['iat'] - now, offset, MAX_SKEW), offset)
        if now > seal['exp'] + MAX_SKEW:
            raise ClockRejected(
                'expired %d s ago (issued %s by %s); an expired message is '
                'never run (a clock skew of %+.0f s, or a delivery that late)'
                % (now - seal['exp'], _when(seal['iat']),
                   seal['sender'][:64], offset), offset)
        if not self.nonces.add(seal['nonce'], seal['exp'] + MAX_SKEW):
            raise MessageRejected('replayed: nonce %s was received before'
                                  % seal['nonce'][:32])

    # -- replies ---------------------------------------------------------

    def _reply_mac(self, nonce: str, result) -> str:
        return hmac.new(self._key, b'osbackup rpc reply\0' + canonical(
            {'reply_to': nonce, 'result': result}), 'sha256').hexdigest()

    def seal_reply(self, nonce: str, result) -> dict:
        return {REPLY_KEY: result, 'mac': self._reply_mac(nonce, result)}

    def open_reply(self, nonce: str, reply):
        """The result inside a sealed reply; raise MessageRejected."""
        if not isinstance(reply, dict) or REPLY_KEY not in reply or \
                not isinstance(reply.get('mac'), str):
            raise MessageRejected('the reply is not signed')
        result = reply[REPLY_KEY]
        if not hmac.compare_digest(reply['mac'],
                                   self._reply_mac(nonce, result)):
            raise MessageRejected('the reply has a bad signature: forged '
                                  'or altered on the way')
        return result


def _when(timestamp):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(timestamp))

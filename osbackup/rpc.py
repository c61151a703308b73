"""RPC plumbing: the transport, clients and servers over oslo.messaging.

This module owns the process's single transport (as nova/rpc.py does).
Without a ``transport_url`` osbackup runs all-in-one: conductor and agent
share one process over oslo.messaging's in-memory ``fake`` driver.

Every message is signed (see signing.py). oslo.messaging hands a
serializer one argument at a time and never the method name, so a
serializer alone cannot cover a whole message; instead:

* ``get_client`` returns a ``SigningClient``: its ``prepare().cast`` and
  ``.call`` seal the method, version, target and all the arguments and
  put the seal in the context dict;
* ``get_server`` builds the RPC server around a ``VerifyingDispatcher``,
  which checks the seal against the message as received before anything
  is deserialized or dispatched, and drops (logs, never runs) what fails;
* the serializers seal a call's reply on the server and check it on the
  client, bound to the request's nonce.
"""

import threading
import time

from oslo_config import cfg
from oslo_context import context as oslo_context
from oslo_log import log as logging
import oslo_messaging as messaging
from oslo_messaging import opts as messaging_opts
from oslo_messaging.rpc import dispatcher
from oslo_messaging.rpc import server as rpc_server

from osbackup import deployment
from osbackup import signing

TRANSPORT = None
SIGNER = None
ALL_IN_ONE_URL = 'fake:/'

CONDUCTOR_TOPIC = 'osbackup-conductor'
AGENT_TOPIC = 'osbackup-agent'

#: Advisory messages: worthless when late, so valid briefly (seconds).
SHORT_LIVED = {'heartbeat': 120, 'task_progress': 120}

SECURITY_LOG = logging.getLogger('osbackup.security')
LOG = logging.getLogger(__name__)


def set_defaults(conf=None) -> None:
    """Use the ``osbackup`` exchange; register the transport options."""
    messaging.set_transport_defaults('osbackup')
    if conf is not None:
        for group, opts in messaging_opts.list_opts():
            if group in (None, 'DEFAULT'):
                conf.register_opts(opts)


def init(conf, url: str | None = None) -> None:
    """Open the transport and load the signing key (or refuse to start)."""
    global TRANSPORT, SIGNER
    if TRANSPORT is not None:
        return
    if conf is not cfg.CONF:
        # oslo.messaging 18 registers its [oslo_messaging_tracing] options
        # on the global CONF only: with another ConfigOpts every cast would
        # fail with NoSuchOptError, far from the cause.
        raise TypeError('osbackup.rpc.init() needs the global '
                        'oslo_config.cfg.CONF (osbackup.conf.CONF), not a '
                        'private ConfigOpts')
    if url is None and deployment.is_all_in_one(conf):
        url = ALL_IN_ONE_URL
    in_process = (url or conf.transport_url or '').startswith('fake:')
    SIGNER = signing.Signer.from_conf(conf, ephemeral_allowed=in_process)
    TRANSPORT = messaging.get_rpc_transport(
        conf, url=url,
        allowed_remote_exmods=['osbackup.exception', 'osbackup.signing'])


def cleanup() -> None:
    global TRANSPORT, SIGNER
    if TRANSPORT is not None:
        TRANSPORT.cleanup()
    TRANSPORT = SIGNER = None


def cleanup_within(timeout: float) -> bool:
    """cleanup(), waiting for it at most ``timeout`` s; whether it ended.

    Closing can take long (oslo.messaging's reply listener, a vanished
    broker); a process about to exit need not wait for it.
    """
    closer = threading.Thread(target=cleanup, name='rpc-cleanup',
                              daemon=True)
    closer.start()
    closer.join(timeout)
    return not closer.is_alive()


def _nonce(context):
    seal = context.get(signing.SEAL_KEY) if isinstance(context, dict) \
        else getattr(context, 'osbackup_seal', None)
    return seal.get('nonce') if isinstance(seal, dict) else None


class ContextSerializer(messaging.NoOpSerializer):
    """Carry an oslo.context RequestContext (and its seal) across the bus.

    Client side: contexts arrive as sealed dicts (SigningClient), and a
    call's result must be a reply sealed for that request.
    """

    def __init__(self, signer):
        self.signer = signer

    def serialize_context(self, context):
        return context if isinstance(context, dict) else context.to_dict()

    def deserialize_context(self, context):
        ctx = oslo_context.RequestContext.from_dict(context)
        ctx.osbackup_seal = context.get(signing.SEAL_KEY)
        return ctx

    def deserialize_entity(self, context, entity):
        # Only ever called on the result of a call.
        return self.signer.open_reply(_nonce(context), entity)


class ReplySealingSerializer(ContextSerializer):
    """Server side: arguments pass as they are, results leave sealed."""

    def serialize_entity(self, context, entity):
        # Only ever called on an endpoint's result (a cast's is dropped).
        return self.signer.seal_reply(_nonce(context), entity)

    def deserialize_entity(self, context, entity):
        return entity


class SigningClient:
    """An RPCClient whose every request carries a seal.

    Mirrors the parts of RPCClient osbackup uses: ``prepare``, ``cast``,
    ``call`` and ``can_send_version``. ``prepare(ttl=...)`` overrides the
    message lifetime.
    """

    def __init__(self, client, signer):
        self._client = client
        self._signer = signer

    def prepare(self, ttl: int | None = None, **kwargs):
        return _SigningCallContext(self._client.prepare(**kwargs),
                                   self._signer, ttl)

    def can_send_version(self, version):
        return self._client.can_send_version(version)

    def cast(self, ctxt, method, **kwargs):
        self.prepare().cast(ctxt, method, **kwargs)

    def call(self, ctxt, method, **kwargs):
        return self.prepare().call(ctxt, method, **kwargs)


class _SigningCallContext:

    def __init__(self, cctxt, signer, ttl):
        self._cctxt = cctxt
        self._signer = signer
        self._ttl = ttl

    def _sealed(self, ctxt, method, kwargs):
        target = self._cctxt.target
        context = dict(ctxt) if isinstance(ctxt, dict) else ctxt.to_dict()
        context[signing.SEAL_KEY] = self._signer.seal(
            method, kwargs, target.topic, target.server, target.version,
            ttl=self._ttl or SHORT_LIVED.get(method))
        return context

    def can_send_version(self, version):
        return self._cctxt.can_send_version(version)

    def cast(self, ctxt, method, **kwargs):
        self._cctxt.cast(self._sealed(ctxt, method, kwargs), method,
                         **kwargs)

    def call(self, ctxt, method, **kwargs):
        return self._cctxt.call(self._sealed(ctxt, method, kwargs), method,
                                **kwargs)


class RejectionLog:
    """Log rejected messages, each (sender, reason) once per ``interval``.

    A sender's claims are unauthenticated: without a limit, one
    misconfigured agent (or anyone on the broker) fills the log.
    """

    #: Distinct (sender, reason) pairs remembered at most.
    MAX_KEYS = 1000

    def __init__(self, interval: float = 60.0):
        self.interval = interval
        self._last = {}
        self._lock = threading.Lock()

    def log(self, method, topic, server, sender, reason) -> None:
        key = (str(sender)[:64], reason[:80])
        now = time.monotonic()
        with self._lock:
            last, hidden = self._last.get(key, (None, 0))
            if last is not None and now - last < self.interval:
                self._last[key] = (last, hidden + 1)
                return
            if len(self._last) >= self.MAX_KEYS:
                self._last.clear()
            self._last[key] = (now, 0)
        SECURITY_LOG.error(
            'SECURITY: rejected RPC message %.64r for %s.%s (claimed sender '
            '%.64r): %s%s', method, topic, server, sender, reason,
            ' (%d more like it in the last %d s not logged)'
            % (hidden, self.interval) if hidden else '')


class VerifyingDispatcher(messaging.RPCDispatcher):
    """Check each message's seal before the usual dispatch.

    ``on_verified(seal)`` sees the seal of every message let through;
    ``on_rejected(message, seal, exc)`` every refused one (its claims
    unproven, except for a signing.ClockRejected).
    """

    def __init__(self, endpoints, serializer, signer, topic, server,
                 on_verified=None, on_rejected=None):
        super().__init__(endpoints, serializer,
                         dispatcher.DefaultRPCAccessPolicy)
        self._signer = signer
        self._topic = topic
        self._server = server
        self._on_verified = on_verified
        self._on_rejected = on_rejected
        self._log = RejectionLog()

    def dispatch(self, incoming):
        message = incoming.message
        seal = incoming.ctxt.get(signing.SEAL_KEY)
        try:
            self._signer.check(seal, message.get('method'),
                               message.get('args', {}),
                               message.get('version'), self._topic,
                               self._server)
        except signing.MessageRejected as exc:
            sender = seal.get('sender') if isinstance(seal, dict) else None
            self._log.log(message.get('method'), self._topic, self._server,
                          sender, exc.message)
            self._hook(self._on_rejected, message, seal, exc)
            # An expected exception: no traceback here, and a caller
            # waiting on a call gets the reason instead of a timeout.
            raise messaging.ExpectedException()
        self._hook(self._on_verified, seal)
        return super().dispatch(incoming)

    @staticmethod
    def _hook(func, *args):
        if func is None:
            return
        try:
            func(*args)
        except Exception:
            # Bookkeeping must never change what is dispatched.
            LOG.exception('RPC message hook %s failed', func)


def get_client(topic: str, version: str, version_cap: str | None = None,
               timeout: int | None = None) -> SigningClient:
    assert TRANSPORT is not None, 'osbackup.rpc.init() was not called'
    target = messaging.Target(topic=topic, version=version)
    return SigningClient(messaging.get_rpc_client(
        TRANSPORT, target, version_cap=version_cap,
        serializer=ContextSerializer(SIGNER), timeout=timeout), SIGNER)


def get_server(topic: str, server: str, endpoints: list,
               on_verified=None, on_rejected=None):
    """An RPC server checking every seal (see VerifyingDispatcher)."""
    assert TRANSPORT is not None, 'osbackup.rpc.init() was not called'
    target = messaging.Target(topic=topic, server=server)
    return rpc_server.RPCServer(
        TRANSPORT, target, VerifyingDispatcher(
            endpoints, ReplySealingSerializer(SIGNER), SIGNER, topic,
            server, on_verified, on_rejected))


def fit_sender_pool(conf, wanted: int, reserved: int) -> int:
    """How many threads may cast at once without overflowing the pool.

    oslo.messaging's rabbit driver keeps at most ``[oslo_messaging_rabbit]
    rpc_conn_pool_size`` sender connections per process; a cast beyond
    them opens and closes an AMQP connection of its own, which at fleet
    scale turns into a reconnect storm ("Connection pool limit
    exceeded"). ``reserved`` threads of the process cast too.
    """
    try:
        size = conf.oslo_messaging_rabbit.rpc_conn_pool_size
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        # Not the rabbit driver (all-in-one): no pool and no publisher
        # confirms to wait for, so one thread sends as fast.
        return 1
    fit = max(1, size - reserved)
    if wanted > fit:
        LOG.warning('%d sender threads do not fit [oslo_messaging_rabbit] '
                    'rpc_conn_pool_size = %d beside %d other casting '
                    'threads; using %d. Raise rpc_conn_pool_size to use '
                    'more.', wanted, size, reserved, fit)
        return fit
    return wanted


def admin_context():
    return oslo_context.RequestContext(user_id='osbackup',
                                       project_id='osbackup')

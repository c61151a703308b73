"""RPC plumbing: the transport, clients and servers over oslo.messaging.

This module owns the process's single transport (as nova/rpc.py does).
Without a ``transport_url`` osbackup runs all-in-one: conductor and agent
share one process over oslo.messaging's in-memory ``fake`` driver.
"""

from oslo_config import cfg
from oslo_context import context as oslo_context
import oslo_messaging as messaging
from oslo_messaging import opts as messaging_opts
from oslo_messaging.rpc import dispatcher

TRANSPORT = None
ALL_IN_ONE_URL = 'fake:/'

CONDUCTOR_TOPIC = 'osbackup-conductor'
AGENT_TOPIC = 'osbackup-agent'


def set_defaults(conf=None) -> None:
    """Use the ``osbackup`` exchange; register the transport options."""
    messaging.set_transport_defaults('osbackup')
    if conf is not None:
        for group, opts in messaging_opts.list_opts():
            if group in (None, 'DEFAULT'):
                conf.register_opts(opts)


def is_all_in_one(conf) -> bool:
    """True when no ``transport_url`` was configured anywhere.

    oslo.messaging's own default (``rabbit://``) does not count: a node
    with no broker configured runs conductor and agent in one process.
    """
    where = conf.get_location('transport_url').location
    return not conf.transport_url or where in (
        cfg.Locations.opt_default, cfg.Locations.set_default)


def init(conf, url: str | None = None) -> None:
    global TRANSPORT
    if TRANSPORT is not None:
        return
    if url is None and is_all_in_one(conf):
        url = ALL_IN_ONE_URL
    TRANSPORT = messaging.get_rpc_transport(
        conf, url=url, allowed_remote_exmods=['osbackup.exception'])


def cleanup() -> None:
    global TRANSPORT
    if TRANSPORT is not None:
        TRANSPORT.cleanup()
    TRANSPORT = None


class ContextSerializer(messaging.NoOpSerializer):
    """Carry an oslo.context RequestContext across the bus."""

    def serialize_context(self, context):
        return context.to_dict()

    def deserialize_context(self, context):
        return oslo_context.RequestContext.from_dict(context)


def get_client(topic: str, version: str, version_cap: str | None = None,
               timeout: int | None = None):
    assert TRANSPORT is not None, 'osbackup.rpc.init() was not called'
    target = messaging.Target(topic=topic, version=version)
    return messaging.get_rpc_client(TRANSPORT, target,
                                    version_cap=version_cap,
                                    serializer=ContextSerializer(),
                                    timeout=timeout)


def get_server(topic: str, server: str, endpoints: list):
    assert TRANSPORT is not None, 'osbackup.rpc.init() was not called'
    target = messaging.Target(topic=topic, server=server)
    return messaging.get_rpc_server(
        TRANSPORT, target, endpoints, serializer=ContextSerializer(),
        access_policy=dispatcher.DefaultRPCAccessPolicy)


def admin_context():
    return oslo_context.RequestContext(user_id='osbackup',
                                       project_id='osbackup')

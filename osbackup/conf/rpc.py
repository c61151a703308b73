"""[DEFAULT] options of osbackup's RPC message signing."""

from oslo_config import cfg

rpc_opts = [
    cfg.StrOpt('rpc_signing_key_file',
               help='File holding the key that signs and checks every RPC '
                    'message (HMAC-SHA256): casts from the conductor to '
                    'agents, agents\' reports and osbackup-manage\'s '
                    'requests. The conductor, every agent and '
                    'osbackup-manage need the same key; create it with '
                    '"openssl rand -hex 32 > /etc/osbackup/rpc.key" and make '
                    'it readable only by the service user (chmod 600). '
                    'Unset with a transport_url, a key is derived from the '
                    'broker credentials (with a warning: anyone holding '
                    'them could then forge messages). All-in-one runs (no '
                    'transport_url) use a random key of their own. Unsigned, '
                    'forged, replayed and expired messages are logged as '
                    'security events and never run.'),
    cfg.IntOpt('rpc_message_ttl',
               default=3600, min=60, max=86400,
               help='Seconds a signed RPC message stays valid after it is '
                    'sent; receivers refuse it afterwards and remember its '
                    'nonce until then to refuse replays. It must cover the '
                    'longest time a report may wait in the broker for a '
                    'restarted conductor. Heartbeats and progress reports '
                    'are valid for 120 s only. Agents also refuse tasks '
                    'past their own deadline ([conductor] '
                    'task_start_timeout).'),
]


def register_opts(conf):
    conf.register_opts(rpc_opts)


def list_opts():
    return {'DEFAULT': rpc_opts}

"""Client side of the agent RPC API (conductor -> agent)."""

import oslo_messaging as messaging

from osbackup import rpc


class AgentAPI:
    """Casts to one agent, addressed by its host name.

    API version history:
        1.0 - Initial version: run_task
    """

    RPC_API_VERSION = '1.0'

    def __init__(self, conf):
        self.client = rpc.get_client(rpc.AGENT_TOPIC, self.RPC_API_VERSION,
                                     version_cap=conf.upgrade_levels.agent)

    def run_task(self, ctxt, host: str, task: dict) -> None:
        """Ask ``host`` to run ``task``; raise if no agent queue exists.

        ``at_least_once`` makes the broker refuse a cast nobody can receive
        (MessageUndeliverable) instead of dropping it silently, and the
        finite retry turns a dead broker into an error, not a hang.
        """
        cctxt = self.client.prepare(
            server=host, version='1.0', retry=3,
            transport_options=messaging.TransportOptions(at_least_once=True))
        cctxt.cast(ctxt, 'run_task', task=task)

"""``osbackup-manage agent``: the fleet of agents and their health."""

from osbackup import manage
from osbackup.manage import output


def _flatten(agent):
    info = agent.get('info') or {}
    return {'host': agent['host'], 'state': agent['state'],
            'version': agent['version'],
            'last_heartbeat': agent['last_heartbeat'],
            'drivers': info.get('drivers', []),
            'services': info.get('services', []),
            'free_bytes': info.get('free_bytes'),
            'storage': info.get('storage')}


class AgentCommands:
    """Agents that have sent heartbeats."""

    def __init__(self, env):
        self.env = env

    @manage.format_arg
    def list(self, fmt='table'):
        """List agents: state up/down, version, drivers, services, space."""
        agents = [_flatten(a) for a in self.env.catalogue.list_agents(
            self.env.conf.conductor.agent_down_time)]
        if fmt == 'json':
            output.emit_json(agents)
        else:
            output.table(agents, [
                ('Host', 'host'), ('State', 'state'), ('Version', 'version'),
                ('Last heartbeat', 'last_heartbeat'),
                ('Services found', 'services'), ('Drivers', 'drivers'),
                ('Free space', lambda a: output.human_size(a['free_bytes']))])
        return manage.EXIT_OK

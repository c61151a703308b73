"""``osbackup-manage service list``: what is and is not protected, per host.

Each entry joins an agent's heartbeat (the drivers it runs, the services
it found, their units there) with the service definitions (paths,
databases, secrets), so an operator sees every definition on every host.
"""

from osbackup import definitions
from osbackup.definitions import base
from osbackup import exception
from osbackup import manage
from osbackup.manage import output


def entries(conf, agents: list, defined: dict, host=None) -> list[dict]:
    """One entry per (host, definition), sorted by host then service."""
    out = []
    for agent in sorted(agents, key=lambda a: a['host']):
        if host is not None and agent['host'] != host:
            continue
        info = agent.get('info') or {}
        found = set(info.get('services', []))
        # A driver the agent runs from a definition this side lacks (an
        # extra file set of that node's configuration): what it reported.
        unknown = {n: base.ServiceDefinition(name=n, title=n, fileset=False)
                   for n in info.get('drivers', []) if n not in defined}
        for name, definition in sorted({**defined, **unknown}.items()):
            group = conf[name] if definition.fileset else None
            units = (info.get('units', {}).get(name) if name in found
                     else None)
            if units is None:
                units = list(group.units) if group is not None else []
            out.append({
                'host': agent['host'], 'service': name,
                'present': name in found,
                'enabled': name in info.get('drivers', []),
                'paths': list(definition.claimed_paths()),
                'units': list(units),
                'databases': (list(group.databases) if group is not None
                              else []),
                'secrets': [s.path for s in definition.secrets],
                'critical': [s.path for s in definition.secrets
                             if s.critical]})
    return out


class ServiceCommands:
    """Service definitions and where their services are."""

    def __init__(self, env):
        self.env = env

    @manage.args('--host', dest='agent_host', metavar='HOST',
                 help='Only this host (default: every agent).')
    @manage.format_arg
    def list(self, agent_host=None, fmt='table'):
        """Per host, every service definition and what it protects."""
        conf, host = self.env.conf, agent_host
        agents = self.env.catalogue.list_agents(
            conf.conductor.agent_down_time)
        known = sorted(a['host'] for a in agents)
        if host is not None and host not in known:
            raise exception.InvalidInput(
                'No agent on host %r (hosts: %s)'
                % (host, ', '.join(known) or 'none'))
        try:
            defined = definitions.load(conf)
        except ValueError as exc:
            raise exception.InvalidInput(str(exc))
        rows = entries(conf, agents, defined, host)
        if fmt == 'json':
            output.emit_json(rows)
        else:
            output.table(rows, [
                ('Host', 'host'), ('Service', 'service'),
                ('Present', 'present'), ('Paths', 'paths'),
                ('Units', 'units'), ('Databases', 'databases'),
                ('Secrets', 'secrets')])
        return manage.EXIT_OK

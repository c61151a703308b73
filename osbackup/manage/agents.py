"""``osbackup-manage agent``: the fleet of agents and their health."""

import sys
import time

from osbackup.conductor import binlogs as binlog_schedule
from osbackup import exception
from osbackup import manage
from osbackup.manage import output
from osbackup import states

#: Seconds between two looks at the catalogue while waiting.
WAIT_POLL = 1.0


def _flatten(agent):
    info = agent.get('info') or {}
    return {'host': agent['host'], 'state': agent['state'],
            'version': agent['version'],
            'last_heartbeat': agent['last_heartbeat'],
            'clock_offset': agent.get('clock_offset'),
            'reason': _reason(agent),
            'drivers': info.get('drivers', []),
            'services': info.get('services', []),
            'free_bytes': info.get('free_bytes'),
            'storage': info.get('storage'),
            **_galera(info)}


def _galera(info) -> dict:
    """``galera`` = {cluster_uuid, state, size} for a cluster member."""
    facts = info.get('galera')
    if not facts:
        return {}
    return {'galera': {key: facts.get(key)
                       for key in ('cluster_uuid', 'state', 'size')}}


def _reason(agent) -> str | None:
    if agent['state'] == states.SKEWED:
        return ('clock skew of %+.0f s: its messages are refused'
                % agent['clock_offset'])
    if agent['state'] == states.STOPPED:
        return 'stopped cleanly at %s' % agent['stopped_at']
    return None


def _rejected(row) -> dict:
    return {'host': row['host'], 'state': states.REJECTED, 'version': None,
            'last_heartbeat': None, 'clock_offset': None,
            'reason': '%s (%d message(s) refused since %s, last at %s)' % (
                row['reason'], row['count'], row['first_at'],
                row['last_at']),
            'drivers': [], 'services': [], 'free_bytes': None,
            'storage': None}


def merge(agents: list, rejections: list) -> list:
    """Agents, with the senders refused lately that are not up.

    A host that heartbeats fine stays as it is whatever is claimed in its
    name: rejected messages prove nothing about who sent them.
    """
    by_host = {a['host']: a for a in agents}
    for row in rejections:
        agent = by_host.get(row['host'])
        if agent is not None and agent['state'] in (states.UP,
                                                    states.SKEWED):
            continue
        by_host[row['host']] = _rejected(row)
    return [by_host[h] for h in sorted(by_host)]


def _clock(agent) -> str | None:
    offset = agent['clock_offset']
    return None if offset is None else '%+.0f s' % offset


class AgentCommands:
    """Agents that have sent heartbeats."""

    def __init__(self, env):
        self.env = env

    def _agents(self) -> list:
        down_after = self.env.conf.conductor.agent_down_time
        catalogue = self.env.read_catalogue()
        agents = catalogue.list_agents(down_after)
        archive = binlog_schedule.archivers(
            agents, self.env.conf.mysql.galera_binlog_node)
        flat = []
        for agent in agents:
            entry = _flatten(agent)
            if agent['host'] in archive:
                interval = agent['info']['binlog']['interval']
                entry['binlog_archive'] = archive[agent['host']] or \
                    'every %d s' % interval
                entry['reason'] = entry['reason'] or \
                    'binlog archive: %s' % entry['binlog_archive']
            flat.append(entry)
        return merge(flat, catalogue.list_rejections(down_after))

    @manage.format_arg
    def list(self, fmt='table'):
        """List agents: up, down, stopped, skewed or rejected, and more."""
        agents = self._agents()
        if fmt == 'json':
            output.emit_json(agents)
        else:
            output.table(agents, [
                ('Host', 'host'), ('State', 'state'), ('Version', 'version'),
                ('Last heartbeat', 'last_heartbeat'), ('Clock', _clock),
                ('Services found', 'services'), ('Drivers', 'drivers'),
                ('Free space', lambda a: output.human_size(a['free_bytes'])),
                ('Note', 'reason')])
        return manage.EXIT_OK

    @manage.args('agent_host', metavar='HOST', help='The agent to forget.')
    @manage.args('--force', action='store_true',
                 help='Delete it even while it is up (it comes back with '
                      'its next heartbeat).')
    @manage.format_arg
    def delete(self, agent_host, force=False, fmt='table'):
        """Remove a retired host from the catalogue; its backups stay."""
        host = agent_host
        agent = self.env.catalogue.delete_agent(
            host, self.env.conf.conductor.agent_down_time, force=force)
        if fmt == 'json':
            output.emit_json(_flatten(agent))
        else:
            print('Agent %s deleted (it was %s); its backups stay'
                  % (host, agent['state']))
        return manage.EXIT_OK

    @manage.args('hosts', metavar='HOST', nargs='+',
                 help='Agents that must be up.')
    @manage.args('--timeout', type=float, default=120,
                 help='Seconds to wait at most (default: 120).')
    def wait(self, hosts, timeout=120):
        """Wait until these agents are up and a conductor answers."""
        deadline = time.monotonic() + timeout
        missing, conductor = hosts, 'not asked yet'
        while True:
            agents = {a['host']: a for a in self._agents()}
            missing = ['%s (%s)' % (h, agents[h]['state'] if h in agents
                                    else 'never seen')
                       for h in hosts
                       if agents.get(h, {}).get('state') != states.UP]
            if not missing:
                conductor = self._conductor_answers(
                    max(1.0, min(5.0, deadline - time.monotonic())))
                if conductor is None:
                    print('Agents up: %s; a conductor answers'
                          % ', '.join(hosts))
                    return manage.EXIT_OK
            if time.monotonic() >= deadline:
                break
            time.sleep(min(WAIT_POLL, max(0.0,
                                          deadline - time.monotonic())))
        what = ('agent(s) not up: %s' % ', '.join(missing)) if missing \
            else 'no conductor answered (%s)' % conductor
        print('ERROR: timed out after %.0f s: %s (see "osbackup-manage '
              'agent list")' % (timeout, what), file=sys.stderr)
        return manage.EXIT_FAILED

    def _conductor_answers(self, timeout: float) -> str | None:
        """None when a conductor answers a round trip, else why not."""
        try:
            self.env.call('mark', timeout=timeout)
        except exception.OsbackupError as exc:
            return exc.message
        except Exception as exc:
            return str(exc)
        return None

"""Backup orchestration: from a request to one task per (host, service).

The conductor owns the truth. It records every task in the catalogue
before casting it, turns an undeliverable cast into a failed task at once,
and closes a backup only when each of its tasks has ended.
"""

import re

from oslo_log import log as logging
import oslo_messaging as messaging

from osbackup import exception
from osbackup import rpc
from osbackup import states

LOG = logging.getLogger(__name__)

_NAME = re.compile(r'^[a-z][a-z0-9_-]{0,63}$')


def validate_names(kind: str, names: list, known: list) -> list:
    """Refuse malformed or unknown host/service names with a clear error."""
    out = []
    for name in names or []:
        if not isinstance(name, str) or not name:
            raise exception.InvalidInput('Empty %s name' % kind)
        if kind == 'service' and not _NAME.match(name):
            raise exception.InvalidInput('Invalid service name %r' % name)
        if name not in known:
            raise exception.InvalidInput(
                'Unknown %s %r (known: %s)'
                % (kind, name, ', '.join(sorted(known)) or 'none'))
        if name not in out:
            out.append(name)
    return out


class BackupOrchestrator:
    """Creates backups, dispatches their tasks and closes them."""

    def __init__(self, conf, catalogue, agent_api):
        self.conf = conf
        self.catalogue = catalogue
        self.agent_api = agent_api

    def _agents(self):
        return {a['host']: a for a in self.catalogue.list_agents(
            self.conf.conductor.agent_down_time)}

    def create(self, hosts: list, services: list,
               policy: str | None = None) -> dict:
        agents = self._agents()
        hosts = validate_names('host', hosts, list(agents))
        known_services = sorted({d for a in agents.values()
                                 for d in a['info'].get('drivers', [])})
        services = validate_names('service', services, known_services)
        down = [h for h in hosts if agents[h]['state'] != states.UP]
        if down:
            raise exception.InvalidInput(
                'Agent(s) down, not backing up: %s (see "osbackup-manage '
                'agent list")' % ', '.join(down))
        if not hosts:
            hosts = sorted(h for h, a in agents.items()
                           if a['state'] == states.UP)
            if not hosts:
                raise exception.InvalidInput(
                    'No agent is up: start osbackup-agent on the nodes '
                    'first (see "osbackup-manage agent list")')
        backup = self.catalogue.create_backup(hosts, services, policy)
        LOG.info('Backup %s: hosts %s, services %s', backup['id'],
                 ', '.join(hosts), ', '.join(services) or 'all')
        for host in hosts:
            drivers = agents[host]['info'].get('drivers', [])
            for service in services or drivers:
                self._dispatch(backup['id'], host, service,
                               enabled=service in drivers)
        self.catalogue.finish_backup_if_done(backup['id'])
        return self.catalogue.get_backup(backup['id'])

    def _dispatch(self, backup_id, host, service, enabled):
        task = self.catalogue.create_task(
            'backup', host, service, {}, self.conf.conductor.task_timeout,
            backup_id=backup_id,
            deliver_within=self.conf.conductor.task_start_timeout)
        if not enabled:
            self.catalogue.task_finished(
                task['id'], states.SKIPPED,
                {'reason': 'driver %s is not enabled on %s'
                           % (service, host)})
            return
        message = {'id': task['id'], 'kind': 'backup', 'host': host,
                   'service': service, 'backup_id': backup_id,
                   'params': task['params'], 'expires_at': task['deliver_by']}
        try:
            self.agent_api.run_task(rpc.admin_context(), host, message)
        except (messaging.MessageUndeliverable,
                messaging.MessageDeliveryFailure) as exc:
            LOG.error('Could not send task %s to %s: %s', task['id'], host,
                      exc)
            self.catalogue.task_finished(
                task['id'], states.FAILED, {},
                'agent %s is not listening (no queue on the broker): %s'
                % (host, type(exc).__name__))

    def task_done(self, task: dict) -> None:
        """Close the task's backup once its last task has ended."""
        final = self.catalogue.finish_backup_if_done(task['backup_id'])
        if final:
            LOG.info('Backup %s ended %s', task['backup_id'], final)

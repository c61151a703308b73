"""Backup orchestration: from a request to one task per (host, service).

The conductor owns the truth. It records every task in the catalogue
before casting it, turns an undeliverable cast into a failed task at once,
and closes a backup only when each of its tasks has ended.
"""

import re

from oslo_log import log as logging

from osbackup.conductor import galera
from osbackup.conductor import notify
from osbackup.definitions import binlog as binlog_definition
from osbackup import exception
from osbackup import states
from osbackup import storage as storage_mod

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

    def __init__(self, conf, catalogue, dispatcher):
        self.conf = conf
        self.catalogue = catalogue
        self.dispatch = dispatcher
        #: Called with the backup when one ends SUCCEEDED.
        self.on_success = []
        #: Writes the storage record of every backup that ends.
        self.records = None
        self.notifications = notify.DISABLED

    def _agents(self):
        return {a['host']: a for a in self.catalogue.list_agents(
            self.conf.conductor.agent_down_time)}

    def create(self, hosts: list, services: list,
               policy: str | None = None,
               targets: list | None = None, full: bool = False) -> dict:
        """Record a backup and cast its tasks; ``full`` skips incrementals."""
        agents = self._agents()
        hosts = validate_names('host', hosts, list(agents))
        known_services = sorted({d for a in agents.values()
                                 for d in a['info'].get('drivers', [])})
        services = validate_names('service', services, known_services)
        # A skewed agent runs: its tasks fail naming the skew (dispatch).
        usable = (states.UP, states.SKEWED)
        down = ['%s (%s)' % (h, agents[h]['state']) for h in hosts
                if agents[h]['state'] not in usable]
        if down:
            raise exception.InvalidInput(
                'Agent(s) down, not backing up: %s (see "osbackup-manage '
                'agent list")' % ', '.join(down))
        if not hosts:
            hosts = sorted(h for h, a in agents.items()
                           if a['state'] in usable)
            if not hosts:
                raise exception.InvalidInput(
                    'No agent is up: start osbackup-agent on the nodes '
                    'first (see "osbackup-manage agent list")')
        targets = validate_names('target', targets or [],
                                 storage_mod.target_names(self.conf)) or \
            [self.conf.storage.backend]
        backup = self.catalogue.create_backup(hosts, services, policy,
                                              targets)
        LOG.info('Backup %s: hosts %s, services %s', backup['id'],
                 ', '.join(hosts), ', '.join(services) or 'all')
        self.notifications.backup_started(backup)
        bases = {} if full else self._bases(hosts)
        # An incremental is about as large as the last backup; a full one
        # as the last full one, however small the incrementals since.
        sizes = {**self.catalogue.last_sizes(hosts, full=True),
                 **{key: size for key, size in
                    self.catalogue.last_sizes(hosts).items()
                    if key in bases}}
        wave = []
        members = galera.plan(self.conf, agents, hosts)
        for host in hosts:
            drivers = agents[host]['info'].get('drivers', [])
            for service in services or drivers:
                cluster = members.get(host) \
                    if service in galera.SERVICES else None
                if service in drivers and cluster is not None and \
                        cluster.chosen != host:
                    self._not_here(backup['id'], host, service, cluster)
                elif service in drivers:
                    params = {'targets': targets,
                              'backup_uuid': backup['uuid']}
                    if (host, service) in sizes:
                        params['expected_bytes'] = sizes[(host, service)]
                    if (host, service) in bases:
                        params['base'] = bases[(host, service)]
                    if service == binlog_definition.NAME:
                        params['binlog_from'] = \
                            self.catalogue.binlog_position(host)
                    wave.append(dict(kind='backup', host=host,
                                     service=service, params=params,
                                     backup_id=backup['id']))
                else:
                    self._skip(backup['id'], host, service)
        self.dispatch.wave(wave)
        final = self.catalogue.finish_backup_if_done(backup['id'])
        if final:
            self._ended(backup['id'])
        backup = self.catalogue.get_backup(backup['id'])
        if final:
            self.notifications.backup_ended(backup)
        return backup

    def _bases(self, hosts) -> dict:
        """The artifact each (host, service) may be incremental against.

        None once a chain is ``full_backup_every`` long: the next backup
        reads every file again.
        """
        opts = self.conf.conductor
        if not opts.incremental_backups or opts.full_backup_every < 2:
            return {}
        return {key: base for key, base in
                self.catalogue.chain_bases(hosts).items()
                if base['depth'] + 1 < opts.full_backup_every}

    def _skip(self, backup_id, host, service):
        task = self.catalogue.create_task('backup', host, service, {}, 0,
                                          backup_id=backup_id)
        self.catalogue.task_finished(
            task['id'], states.SKIPPED,
            {'reason': 'driver %s is not enabled on %s' % (service, host)})

    def _ended(self, backup_id: int) -> None:
        if self.records is not None:
            try:
                self.records.backup_ended(backup_id)
            except Exception:
                LOG.exception('Backup %s: writing its storage records '
                              'failed', backup_id)

    def _not_here(self, backup_id, host, service, cluster):
        """A cluster member that another member's task backs up."""
        task = self.catalogue.create_task('backup', host, service, {}, 0,
                                          backup_id=backup_id)
        if cluster.chosen:
            self.catalogue.task_finished(
                task['id'], states.SKIPPED,
                {'reason': cluster.skip_reason(host)})
        else:
            self.catalogue.task_finished(task['id'], states.FAILED, {},
                                         cluster.reason)

    def task_done(self, task: dict) -> None:
        """Close the task's backup once its last task has ended."""
        final = self.catalogue.finish_backup_if_done(task['backup_id'])
        if final:
            LOG.info('Backup %s ended %s', task['backup_id'], final)
            self._ended(task['backup_id'])
            if self.notifications.enabled:
                # The whole backup: the payload carries its size.
                self.notifications.backup_ended(
                    self.catalogue.get_backup(task['backup_id']))
        if final == states.SUCCEEDED and self.on_success:
            # The summary: hooks that need the artifacts read them, so a
            # 1000-host backup is not loaded whole for nothing.
            backup = self.catalogue.get_backup_summary(task['backup_id'])
            for hook in self.on_success:
                try:
                    hook(backup)
                except Exception:
                    LOG.exception('After-backup action failed for backup '
                                  '%s', backup['id'])

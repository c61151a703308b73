"""Restore orchestration: the plan, run phase by phase across hosts.

Every affected host finishes a phase before any host starts the next:
stage and verify everything, stop units everywhere, load databases,
swap directories, start units, check them. When any task of a phase
fails, every host rolls back what it did (its own journal says what) and
the restore ends FAILED with the failing step. Phase changes are
compare-and-set updates, so several conductors can drive restores, and a
phase change commits together with the new phase's tasks: a conductor
killed (or a database failing) while moving on leaves the restore at the
phase it was at, never at a phase whose tasks are missing (which would
look finished, and skip it). A phase has as many tasks as the plan has
hosts with work in it; one with fewer fails the restore. A phase no host
has work in is passed over without a catalogue write.

A host whose agent cannot roll back (it is down) is reported as such
(restore_outcome.py); once the agent is heard from again, its rollback
is asked for again and the answer recorded.
"""

from oslo_log import log as logging

from osbackup.conductor import galera_restore
from osbackup.conductor import notify
from osbackup.conductor import pitr as pitr_mod
from osbackup.conductor import restore_outcome
from osbackup.conductor import restore_plan
from osbackup import exception
from osbackup import restore_phases
from osbackup import states

LOG = logging.getLogger(__name__)

#: Cluster restores only: every member stops and puts its data back.
UNDO_PHASE = 99
ROLLBACK_PHASE = 100
DONE_PHASE = 200
#: Rollback tasks a host gets at most in one restore, retries included.
ROLLBACK_ATTEMPTS = 5


def phase_name(index: int) -> str:
    if index == ROLLBACK_PHASE:
        return restore_phases.ROLLBACK
    if index == UNDO_PHASE:
        return restore_phases.CLUSTER_UNDO
    if index >= DONE_PHASE:
        return 'done'
    return restore_phases.PHASES[index]


class RestoreOrchestrator:
    """Creates restores and drives them through their phases."""

    def __init__(self, conf, catalogue, dispatcher):
        self.conf = conf
        self.catalogue = catalogue
        self.dispatch = dispatcher
        self.notifications = notify.DISABLED

    def create(self, backup_id: int | None, hosts: list, services: list,
               dry_run: bool = False, map_host: dict | None = None,
               force: bool = False, point: dict | None = None,
               skip_accounts: bool = False) -> dict:
        """``map_host`` {OLD: NEW}: OLD's artifacts restored on NEW.

        ``force``: load command artifacts an agent would refuse (an OVN
        database of another schema version).

        ``skip_accounts``: leave the database server's accounts and grants
        as they are.

        ``point`` ({to_time or to_gtid, databases}): a point-in-time
        restore of the databases (conductor/pitr.py); it picks the backup.
        """
        choice = None
        if point:
            if backup_id is not None or services or map_host:
                raise exception.InvalidInput(
                    'A point-in-time restore picks its backup and restores '
                    'databases only: no BACKUP_ID, --service or --map-host')
            choice = pitr_mod.resolve(self.conf, self.catalogue, point,
                                      hosts)
            backup_id = choice['base']['backup_id']
            hosts = [choice['base']['host']]
            services = [restore_plan.MYSQL]
        elif backup_id is None:
            raise exception.InvalidInput('Give a BACKUP_ID, or --to-time or '
                                         '--to-gtid')
        backup = self.catalogue.get_backup(backup_id)
        agents = {a['host']: a for a in self.catalogue.list_agents(
            self.conf.conductor.agent_down_time)}
        map_host = map_host or {}
        backup = restore_plan.map_hosts(backup, map_host, agents)
        hosts = [map_host.get(h, h) for h in hosts or []]
        chains = self.catalogue.artifact_chains(
            [a['id'] for a in backup['artifacts'] if a.get('parent_id')])
        plan = restore_plan.build(self.conf, backup, agents, hosts or [],
                                  services or [], chains, force=force,
                                  skip_accounts=skip_accounts)
        if choice is not None:
            pitr_mod.apply(plan, choice)
        return self._start(backup_id, hosts or [], services or [], plan,
                           agents, dry_run)

    def recover_cluster(self, dry_run: bool = False) -> dict:
        """Start a Galera cluster again after a full outage."""
        agents = {a['host']: a for a in self.catalogue.list_agents(
            self.conf.conductor.agent_down_time)}
        plan = galera_restore.plan_recover(agents)
        return self._start(None, sorted(plan['hosts']), [], plan, agents,
                           dry_run)

    def _start(self, backup_id, hosts, services, plan, agents, dry_run):
        if dry_run:
            return {'id': None, 'backup_id': backup_id, 'status': 'DRY_RUN',
                    'dry_run': True, 'plan': plan,
                    'steps': restore_plan.steps(plan)}
        down = sorted(h for h in plan['hosts']
                      if agents.get(h, {}).get('state') != states.UP)
        if down:
            raise exception.InvalidInput(
                'Agent(s) down, cannot restore: %s' % ', '.join(down))
        if self.catalogue.running_restores():
            raise exception.Conflict(
                'Another restore is running; wait for it to end (see '
                '"osbackup-manage restore list")')
        restore = self.catalogue.create_restore(
            backup_id, hosts, services, plan,
            steps=[dict(s, action='skip', status=states.SKIPPED,
                        error=s['reason']) for s in plan['skipped']] +
            restore_plan.repair_steps(plan),
            first_tasks=lambda r: self._specs(r, 0),
            **self._task_times())
        LOG.info('Restore %s of backup %s: hosts %s', restore['id'],
                 backup_id if backup_id is not None else '(none: cluster '
                 'recovery)', ', '.join(sorted(plan['hosts'])))
        self.notifications.restore_started(restore)
        self._send(restore, 0, restore['tasks'])
        return self.catalogue.get_restore(restore['id'])

    # -- phases --------------------------------------------------------

    def _task_times(self):
        return {'timeout': self.conf.conductor.task_timeout,
                'deliver_within': self.conf.conductor.task_start_timeout}

    @staticmethod
    def _specs(restore: dict, index: int, only=None) -> list[dict]:
        """The tasks of a phase: one per host with work in it."""
        name = phase_name(index)
        extra = galera_restore.task_params(restore, name)
        return [dict(kind=restore_phases.task_kind(name), host=host,
                     service='restore',
                     params=dict(extra, restore_id=restore['id'],
                                 backup_id=restore['backup_id'],
                                 plan=host_plan),
                     restore_id=restore['id'])
                for host, host_plan in sorted(restore['plan']['hosts']
                                              .items())
                if restore_plan.has_work(host_plan, name) and
                (only is None or host == only)]

    def _move(self, restore: dict, index: int, following: int,
              specs: list | None = None) -> None:
        """Go from phase ``index`` to ``following`` with its tasks."""
        if specs is None:
            specs = self._specs(restore, following)
        tasks = self.catalogue.start_restore_phase(
            restore['id'], index, following, specs, **self._task_times())
        if tasks is not None:
            self._send(restore, following, tasks)

    def _next_phase(self, restore: dict, index: int) -> tuple | None:
        """The next phase some host has work in, and its tasks; or None.

        A phase no host has work in (the Galera phases, load_db without
        databases) is passed over: moving through it would cost a
        catalogue write and a conductor round on the restore's critical
        path, and do nothing.
        """
        for following in range(index + 1, len(restore_phases.PHASES)):
            specs = self._specs(restore, following)
            if specs:
                return following, specs
        return None

    def _send(self, restore, index, tasks):
        LOG.info('Restore %s: phase %s on %d host(s)', restore['id'],
                 phase_name(index), len(tasks))
        self.dispatch.send(tasks)
        if not tasks:
            self.advance(restore['id'])

    def task_done(self, task: dict) -> None:
        """Record a restore task's steps, then move the restore on."""
        result = task.get('result') or {}
        phase = restore_phases.phase_of(task['kind'])
        steps = list(result.get('steps') or [])
        if not steps or (task['status'] not in states.TASK_GOOD and not any(
                s['status'] == states.FAILED for s in steps)):
            # Every task of every host shows in the timeline, even one
            # that had nothing to do or never reported a step.
            steps.append({'host': task['host'], 'action': phase,
                          'target': '-', 'status': task['status'],
                          'error': task['error']})
        self.catalogue.add_restore_steps(task['restore_id'], phase, steps)
        self.advance(task['restore_id'])
        if task['kind'] == restore_outcome.ROLLBACK_KIND:
            self._log_late_rollback(task)

    def advance(self, restore_id: int) -> None:
        restore = self.catalogue.get_restore(restore_id)
        if restore['status'] != states.RUNNING:
            return
        index = restore['phase']
        if index >= DONE_PHASE:
            # Left by an older conductor between its two writes.
            self._end(restore, index)
            return
        name = phase_name(index)
        tasks = [t for t in restore['tasks']
                 if t['kind'] == restore_phases.task_kind(name)]
        if any(t['status'] in states.TASK_ACTIVE for t in tasks):
            return
        expected = len(self._specs(restore, index))
        if len(tasks) < expected:
            error = ('phase %s has %d of its %d tasks in the catalogue; '
                     'its other hosts never got theirs'
                     % (name, len(tasks), expected))
            LOG.error('Restore %s: %s', restore_id, error)
            if index == ROLLBACK_PHASE:
                self._end(restore, index, error)
                return
            self.catalogue.set_restore_error(restore_id, error)
            self._move(restore, index, self._undo(restore, index))
            return
        if index == ROLLBACK_PHASE:
            self._end(restore, index)
            return
        if index == UNDO_PHASE:
            self._move(restore, index, ROLLBACK_PHASE)
            return
        failed = [t for t in tasks if t['status'] not in states.TASK_GOOD]
        if failed:
            # The first to fail: the others may have failed waiting for it
            # (Galera members waiting for one that could not rejoin).
            first = min(failed, key=lambda t: str(t.get('finished_at') or
                                                  '~'))
            self.catalogue.set_restore_error(
                restore_id, '%s failed on %s: %s'
                % (name, first['host'], first['error'] or first['status']))
            self._move(restore, index, self._undo(restore, index))
            return
        following = self._next_phase(restore, index)
        if following is None:
            self._end(restore, index)
            return
        self._move(restore, index, *following)

    @staticmethod
    def _undo(restore, index):
        """The phase a failure at ``index`` goes to: undo or rollback."""
        if index < UNDO_PHASE and \
                galera_restore.rollback_via_undo(restore, index):
            return UNDO_PHASE
        return ROLLBACK_PHASE

    def _end(self, restore, index, error=None):
        failed = index == ROLLBACK_PHASE or bool(restore['error'] or error)
        status = states.FAILED if failed else states.SUCCEEDED
        if not self.catalogue.end_restore(restore['id'], index, status,
                                          DONE_PHASE, error):
            return
        restore = self.catalogue.get_restore(restore['id'])
        self.notifications.restore_ended(restore)
        if status == states.SUCCEEDED:
            LOG.info('Restore %s SUCCEEDED', restore['id'])
            return
        doubt = restore_outcome.needs_attention(restore)
        if not doubt:
            LOG.warning('Restore %s FAILED and was rolled back on every '
                        'host: %s', restore['id'], restore['error'])
            return
        LOG.error('Restore %s FAILED: %s; it was NOT rolled back on %s',
                  restore['id'], restore['error'], ', '.join(
                      '%s (rollback %s)' % (h['host'], h['rollback'])
                      for h in doubt))

    # -- rollbacks their agent could not run ---------------------------

    def _log_late_rollback(self, task):
        restore = self.catalogue.get_restore(task['restore_id'])
        if restore['status'] == states.RUNNING or len(
                restore_outcome.rollback_tasks(restore, task['host'])) < 2:
            return      # the rollback phase's own task, not a retry
        rollback = restore_outcome.host_rollback(restore, task['host'])
        log = LOG.info if rollback == restore_outcome.DONE else LOG.error
        log('Restore %s: rollback on %s is now %s', restore['id'],
            task['host'], rollback)

    def retry_rollbacks(self) -> None:
        """Ask again for the rollbacks whose agent did not answer.

        An agent killed mid-restore (or in the middle of the rollback
        itself) rolls back from its journal when it starts again; asked
        again, it reports what that rollback did, and the restore records
        it. Asked only once the agent is heard from after the last
        attempt, and ``ROLLBACK_ATTEMPTS`` times at most.
        """
        pending = self.catalogue.restores_with_unanswered_rollback()
        if not pending:
            return
        agents = {a['host']: a for a in self.catalogue.list_agents(
            self.conf.conductor.agent_down_time)}
        for restore_id in pending:
            restore = self.catalogue.get_restore(restore_id)
            if restore['status'] == states.RUNNING:
                continue
            for host in restore['plan']['hosts']:
                self._retry_rollback(restore, host, agents.get(host))

    def _retry_rollback(self, restore, host, agent):
        tasks = restore_outcome.rollback_tasks(restore, host)
        if not tasks or not restore_outcome.unanswered(tasks[-1]) or \
                len(tasks) >= ROLLBACK_ATTEMPTS:
            return
        last = tasks[-1]
        if agent is None or agent['state'] != states.UP or \
                agent['last_heartbeat'] <= last['finished_at']:
            return
        created = self.catalogue.retry_restore_task(
            last, self._specs(restore, ROLLBACK_PHASE, only=host),
            **self._task_times())
        if created:
            LOG.warning('Restore %s: the agent on %s is back; asking it '
                        'again for the rollback it did not answer',
                        restore['id'], host)
            self.dispatch.send(created)

    def check(self) -> None:
        """Periodic: move on restores whose last report was lost."""
        for restore_id in self.catalogue.running_restores():
            self.advance(restore_id)
        self.retry_rollbacks()

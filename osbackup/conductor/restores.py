"""Restore orchestration: the plan, run phase by phase across hosts.

Every affected host finishes a phase before any host starts the next:
stage and verify everything, stop units everywhere, load databases,
swap directories, start units, check them. When any task of a phase
fails, every host rolls back what it did (its own journal says what) and
the restore ends FAILED with the failing step. Phase changes are
compare-and-set updates, so several conductors can drive restores.
"""

from oslo_log import log as logging

from osbackup.conductor import notify
from osbackup.conductor import restore_plan
from osbackup import exception
from osbackup import states

LOG = logging.getLogger(__name__)

ROLLBACK_PHASE = 100
DONE_PHASE = 200


def phase_name(index: int) -> str:
    if index == ROLLBACK_PHASE:
        return restore_plan.ROLLBACK
    if index >= DONE_PHASE:
        return 'done'
    return restore_plan.PHASES[index]


class RestoreOrchestrator:
    """Creates restores and drives them through their phases."""

    def __init__(self, conf, catalogue, dispatcher):
        self.conf = conf
        self.catalogue = catalogue
        self.dispatch = dispatcher
        self.notifications = notify.DISABLED

    def create(self, backup_id: int, hosts: list, services: list,
               dry_run: bool = False) -> dict:
        backup = self.catalogue.get_backup(backup_id)
        agents = {a['host']: a for a in self.catalogue.list_agents(
            self.conf.conductor.agent_down_time)}
        chains = self.catalogue.artifact_chains(
            [a['id'] for a in backup['artifacts'] if a.get('parent_id')])
        plan = restore_plan.build(self.conf, backup, agents, hosts or [],
                                  services or [], chains)
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
            backup_id, hosts or [], services or [], plan)
        LOG.info('Restore %s of backup %s: hosts %s', restore['id'],
                 backup_id, ', '.join(sorted(plan['hosts'])))
        self.notifications.restore_started(restore)
        if plan['skipped']:
            self.catalogue.add_restore_steps(restore['id'], 'load_db', [
                dict(s, action='skip', status=states.SKIPPED,
                     error=s['reason']) for s in plan['skipped']])
        self._start_phase(restore, 0)
        return self.catalogue.get_restore(restore['id'])

    # -- phases --------------------------------------------------------

    def _start_phase(self, restore: dict, index: int) -> None:
        name = phase_name(index)
        sent = len(self.dispatch.wave([
            dict(kind='restore_' + name, host=host, service='restore',
                 params={'restore_id': restore['id'],
                         'backup_id': restore['backup_id'],
                         'plan': host_plan},
                 restore_id=restore['id'])
            for host, host_plan in sorted(restore['plan']['hosts'].items())
            if restore_plan.has_work(host_plan, name)]))
        LOG.info('Restore %s: phase %s on %d host(s)', restore['id'], name,
                 sent)
        if not sent:
            self.advance(restore['id'])

    def task_done(self, task: dict) -> None:
        """Record a restore task's steps, then move the restore on."""
        result = task.get('result') or {}
        phase = task['kind'].replace('restore_', '', 1)
        steps = list(result.get('steps') or [])
        if task['status'] not in states.TASK_GOOD and not any(
                s['status'] == states.FAILED for s in steps):
            steps.append({'host': task['host'], 'action': phase,
                          'target': '-', 'status': task['status'],
                          'error': task['error']})
        if steps:
            self.catalogue.add_restore_steps(task['restore_id'], phase,
                                             steps)
        self.advance(task['restore_id'])

    def advance(self, restore_id: int) -> None:
        restore = self.catalogue.get_restore(restore_id)
        if restore['status'] != states.RUNNING:
            return
        index = restore['phase']
        name = phase_name(index)
        tasks = [t for t in restore['tasks']
                 if t['kind'] == 'restore_' + name]
        if any(t['status'] in states.TASK_ACTIVE for t in tasks):
            return
        if index == ROLLBACK_PHASE:
            if self.catalogue.move_restore_phase(restore_id, index,
                                                 DONE_PHASE):
                self.catalogue.finish_restore(restore_id, states.FAILED)
                LOG.warning('Restore %s FAILED and was rolled back: %s',
                            restore_id, restore['error'])
                self._ended(restore_id)
            return
        failed = [t for t in tasks if t['status'] not in states.TASK_GOOD]
        if failed:
            first = failed[0]
            self.catalogue.set_restore_error(
                restore_id, '%s failed on %s: %s'
                % (name, first['host'], first['error'] or first['status']))
            if self.catalogue.move_restore_phase(restore_id, index,
                                                 ROLLBACK_PHASE):
                self._start_phase(restore, ROLLBACK_PHASE)
            return
        following = index + 1
        if following >= len(restore_plan.PHASES):
            if self.catalogue.move_restore_phase(restore_id, index,
                                                 DONE_PHASE):
                self.catalogue.finish_restore(restore_id, states.SUCCEEDED)
                LOG.info('Restore %s SUCCEEDED', restore_id)
                self._ended(restore_id)
            return
        if self.catalogue.move_restore_phase(restore_id, index, following):
            self._start_phase(restore, following)

    def _ended(self, restore_id: int) -> None:
        self.notifications.restore_ended(
            self.catalogue.get_restore(restore_id))

    def check(self) -> None:
        """Periodic: move on restores whose last report was lost."""
        for restore_id in self.catalogue.running_restores():
            self.advance(restore_id)

"""Runs one task on this node and reports its start, progress and result.

The runner is the agent's unit of work, independent of RPC: it gets a task
dict, checks it may run it, calls the service driver and hands every report
to a ``reporter`` (agent/reporter.py in production, a recorder in tests).
Handing a report over never waits for the broker: progress is reported
from the thread that writes the archive.
"""

import os
import threading
import time

from oslo_log import log as logging
from oslo_utils import timeutils

from osbackup.agent import claims as claims_mod
from osbackup.agent import clock as clock_mod
from osbackup.agent import maintenance as maintenance_mod
from osbackup.agent import packages as packages_mod
from osbackup.agent import restore as restore_mod
from osbackup.agent import space as space_mod
from osbackup.definitions import mysql as mysql_definition
from osbackup.drivers import base as driver_base
from osbackup import exception
from osbackup import restore_phases
from osbackup import states
from osbackup import task_log

LOG = logging.getLogger(__name__)


RESTORE_PHASES = restore_phases.ALL
# A restore holds its services on a host from its first phase to the one
# that ends it there.
RESTORE_ENDS = restore_phases.END_KINDS
RESTORE_HOLDING = tuple(restore_phases.task_kind(p) for p in RESTORE_PHASES
                        if restore_phases.task_kind(p) not in RESTORE_ENDS)


MAINTENANCE_KINDS = ('verify', 'delete', 'distribute_rings')


class TaskCancelled(exception.OsbackupError):
    code = 'cancelled'


class Progress:
    """Accumulate progress; report at most every ``interval`` seconds.

    Also the cancellation point: drivers call it for every chunk, so a
    stopping agent interrupts long work promptly.
    """

    def __init__(self, send, interval: float, cancelled: threading.Event):
        self._send = send
        self._interval = interval
        self._cancelled = cancelled
        self._last = time.monotonic()
        self.bytes = 0
        self.files = 0

    def __call__(self, nbytes: int, nfiles: int) -> None:
        if self._cancelled.is_set():
            raise TaskCancelled('The agent is stopping')
        self.bytes += nbytes
        self.files += nfiles
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._send(self.bytes, self.files)


class TaskRunner:
    """Execute tasks with the loaded drivers; one per service at a time."""

    def __init__(self, conf, host, drivers, storage, reporter, journal,
                 restorer=None, clock=None, packages=None):
        self.conf = conf
        #: Installed package versions, shared with the heartbeat.
        self.packages = packages or packages_mod.PackageVersions(
            conf.agent.package_versions_interval)
        #: The conductor's clock, which deliver-by times are in.
        self.clock = clock or clock_mod.ConductorClock()
        self.restorer = restorer
        self.storages = maintenance_mod.Storages(conf, storage)
        self.maintenance = maintenance_mod.Maintenance(conf, host, drivers,
                                                       self.storages)
        self.host = host
        self.drivers = drivers
        self.storage = storage
        self.reporter = reporter
        self.journal = journal
        self.stopping = threading.Event()
        self.claims = claims_mod.Claims(host)
        self.space = space_mod.SpaceGuard(
            conf, host, os.path.join(os.path.dirname(journal.path),
                                     'backup-sizes.json'))
        #: Ids of accepted tasks not yet finished (sent in heartbeats).
        self.held = set()
        self._handlers = {'backup': self._backup}
        if restorer is not None:
            for phase in RESTORE_PHASES:
                self._handlers[restore_phases.task_kind(phase)] = \
                    self._restore
        for kind in MAINTENANCE_KINDS:
            self._handlers[kind] = self._maintain

    # -- checks ----------------------------------------------------------

    def check(self, task: dict) -> None:
        """Refuse a task that is not for us, stale or malformed."""
        if task.get('host') != self.host:
            raise exception.TaskRejected(
                'Task %s is for host %s, this is %s'
                % (task.get('id'), task.get('host'), self.host))
        if task.get('kind') not in self._handlers:
            raise exception.TaskRejected('Unknown task kind %r'
                                         % task.get('kind'))
        expires = timeutils.parse_isotime(task['expires_at']).timestamp()
        if clock_mod.is_expired(expires, self.clock):
            raise exception.TaskRejected(
                'Task %s expired at %s; refusing to run it late%s'
                % (task['id'], task['expires_at'], self._skew_note()))

    def _skew_note(self) -> str:
        skew = self.clock.apparent_skew()
        if skew is None:
            return ''
        if self.clock.measured():
            return (' (clock skew of %+.0f s between this node and the '
                    'conductor: check NTP)' % skew)
        return (" (the conductor's messages arrive %.0f s %s than this "
                "node's clock says: a clock skew of %+.0f s, or a delivery "
                'that late)' % (abs(skew), 'older' if skew > 0 else 'newer',
                                skew))

    # -- running -----------------------------------------------------------

    def accept(self, task: dict) -> bool:
        """Journal a new task; on a redelivery re-send the earlier report.

        Returns True when the task should run now.
        """
        previous = self.journal.begin(task)
        if previous is None:
            self.held.add(task['id'])
            return True
        if previous.get('state') == 'done':
            LOG.info('Task %s was delivered again; re-sending its result',
                     task['id'])
            self.reporter.finished(task, **previous['report'])
        else:
            LOG.info('Task %s is already running; ignoring the duplicate',
                     task['id'])
        return False

    def run(self, task: dict) -> dict:
        """Run an accepted task to its end and report it; return the report."""
        owner = self._owner(task)
        try:
            self.check(task)
            self._claim(task, owner)
        except exception.OsbackupError as exc:
            return self._finish(task, states.FAILED, {}, exc.message)
        try:
            status, result, error = self._execute(task)
        finally:
            if task['kind'] not in RESTORE_HOLDING:
                self.claims.release(owner)
        # Reported only once the service is free again: the conductor may
        # send the next task (a restore's next phase) the moment it hears.
        return self._finish(task, status, result, error)

    def _execute(self, task):
        # Quick tasks go without a start report: their end is reported
        # well within the conductor's start timeout anyway.
        delay = self.conf.agent.start_report_delay
        starting = threading.Timer(delay, self.reporter.started, (task,))
        starting.daemon = True
        began = time.monotonic()
        LOG.info('Task %s started: %s', task['id'], task_log.describe(task))
        try:
            if delay:
                starting.start()
            else:
                self.reporter.started(task)
            status, result = self._handlers[task['kind']](task)
            error = result.pop('error', None)
            LOG.info('Task %s ended %s: %s, %d bytes stored in %.1f s%s',
                     task['id'], status, task_log.describe(task),
                     task_log.stored_bytes(result), time.monotonic() - began,
                     ': %s' % error if error else '')
            return status, result, error
        except exception.OsbackupError as exc:
            LOG.error('Task %s (%s %s) failed: %s', task['id'],
                      task['kind'], task['service'], exc.message)
            return states.FAILED, {}, exc.message
        except Exception as exc:
            LOG.exception('Task %s (%s %s) failed unexpectedly', task['id'],
                          task['kind'], task['service'])
            return states.FAILED, {}, 'unexpected error: %s' % exc
        finally:
            starting.cancel()

    @staticmethod
    def _owner(task):
        if task['kind'].startswith(restore_phases.TASK_PREFIX):
            return 'restore %s' % (task.get('params') or {}).get('restore_id')
        return '%s task %s' % (task['kind'], task['id'])

    def _claim(self, task, owner):
        """Hold the task's services (a restore: all of its plan's)."""
        if task['kind'] in RESTORE_ENDS:
            return      # it only undoes what its restore did, if anything
        services = (self._restore_services(task)
                    if task['kind'] in RESTORE_HOLDING
                    else {task['service']})
        self.claims.acquire(services, owner,
                            '%s task %s' % (task['kind'], task['id']))

    def _restore_services(self, task):
        plan = (task.get('params') or {}).get('plan') or {}
        services = {f['service'] for f in plan.get('files', [])}
        if plan.get('databases'):
            services.add(mysql_definition.NAME)
            services |= {d['owner'] for d in plan['databases']
                         if d.get('owner')}
        units = set(plan.get('units', []))
        services |= {name for name, driver in self.drivers.items()
                     if units & set(driver.units())}
        return services | {'restore'}

    def _finish(self, task, status, result, error):
        report = {'status': status, 'result': result, 'error': error}
        self.journal.finish(task, report)
        self.held.discard(task['id'])
        self.reporter.finished(task, **report)
        return report

    def recover(self) -> None:
        """Fail tasks a previous agent process died in, and clean up.

        Cleaning up comes first: the conductor acts on the failure
        reports at once (a restore's rollback phase).
        """
        if self.restorer is not None:
            self.restorer.recover()
        for name, driver in sorted(self.drivers.items()):
            # What a driver changed on its server for the length of a
            # task (a Galera desync) is undone before anything else.
            recover = getattr(driver, 'recover', None)
            if recover is not None:
                try:
                    recover()
                except Exception as exc:
                    LOG.error('Driver %s could not undo what the previous '
                              'agent process left: %s', name, exc)
        removed = self.storage.cleanup_partials(self.host)
        for path in removed:
            LOG.info('Removed partial artifact %s', path)
        # Results the previous process could not send (the broker was
        # away when it stopped): the conductor records a late success.
        for record in self.journal.unreported():
            LOG.info('Sending the result of task %s again: the previous '
                     'agent process could not', record['task']['id'])
            self.reporter.finished(record['task'], **record['report'])
        for task in self.journal.interrupted():
            LOG.warning('Task %s (%s %s) was interrupted by an agent '
                        'restart', task['id'], task['kind'], task['service'])
            self._finish(task, states.FAILED, {},
                         'the agent on %s stopped while running the task'
                         % self.host)

    # -- task kinds --------------------------------------------------------

    def _context(self, task, storage=None):
        progress = Progress(
            lambda b, f: self.reporter.progress(task, b, f),
            self.conf.agent.progress_interval, self.stopping)
        return driver_base.TaskContext(
            task_id=task['id'], backup_id=str(task.get('backup_id')),
            host=self.host, service=task['service'],
            storage=storage or self.storage, progress=progress,
            params=task.get('params') or {})

    def _driver(self, task):
        return self.drivers.get(task['service'])

    def _backup(self, task):
        driver = self._driver(task)
        if driver is None:
            return states.SKIPPED, {
                'reason': 'driver %s is not enabled on %s'
                          % (task['service'], self.host)}
        if not driver.is_present():
            return states.SKIPPED, {
                'reason': '%s is not present on %s'
                          % (task['service'], self.host)}
        targets = [self.storages.get(name) for name in
                   (task.get('params') or {}).get('targets') or
                   [self.storage.name]]
        self.space.check(task['service'], task.get('params') or {},
                         targets)
        ctx = self._context(task, storage=targets[0])
        artifacts = [a.to_dict() for a in driver.backup(ctx)]
        stamp = self.packages.stamp(task['service'])
        for art in artifacts:
            art['meta'] = dict(art['meta'], **stamp)
        self._copy(artifacts, targets)
        self.space.record(task['service'],
                          sum(a['size'] for a in artifacts))
        result = {'artifacts': artifacts, 'warnings': ctx.warnings,
                  'bytes': ctx.progress.bytes, 'files': ctx.progress.files}
        if ctx.split:
            # Summed per stage across threads: stages that overlap can
            # add up to more than the task took (tools/bench/e2e.py).
            result['split'] = {k: round(v, 3) for k, v in ctx.split.items()}
            LOG.info('Task %s split: %s', task['id'], ', '.join(
                '%s %.3f s' % kv for kv in result['split'].items()))
        return states.SUCCEEDED, result

    def _copy(self, artifacts, targets):
        """Copy each artifact to the further targets; all or nothing."""
        primary = targets[0]
        written = []
        try:
            for art in artifacts:
                art['copies'] = [{'target': primary.name,
                                  'location': art['location'],
                                  'size': art['size'],
                                  'sha256': art['sha256']}]
                for target in targets[1:]:
                    copy = maintenance_mod.copy_artifact(
                        primary, target, art['location'], art['key'],
                        art['sha256'])
                    written.append((target, copy['location']))
                    art['copies'].append(copy)
        except BaseException:
            # A backup missing a copy its policy asks for is not good:
            # remove every object so nothing half-kept stays behind.
            for target, location in written:
                target.delete(location)
            for art in artifacts:
                primary.delete(art['location'])
            raise

    def _maintain(self, task):
        work = getattr(self.maintenance, task['kind'])
        result = work(task.get('params') or {}, self._context(task).progress)
        return states.SUCCEEDED, result

    def _restore(self, task):
        phase = restore_phases.phase_of(task['kind'])
        progress = self._context(task).progress
        try:
            steps = getattr(self.restorer, phase)(task['params'], progress)
        except restore_mod.PhaseFailed as exc:
            return states.FAILED, {'steps': exc.steps, 'error': exc.message}
        return states.SUCCEEDED, {'steps': steps}

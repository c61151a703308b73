"""A node's part of a restore, one phase per task, journaled for rollback.

The conductor runs the phases in order across hosts; this module does what
one host must do in each and records every change that needs undoing in a
fsynced journal (``<state_path>/agent/restores/<id>.json``) before making
it. Rollback, whether asked by the conductor or run at agent start-up after
a crash, undoes exactly what the journal lists: staged trees are removed,
replaced directories are put back from ``.orig``, loaded databases and
command artifacts (RabbitMQ definitions, OVN databases) get their
pre-restore copy back and stopped units are started again.

Target directories come from the driver's own allow-list, never from the
message: an artifact naming any other path is refused.

A rollback run at start-up is remembered (``<id>.rolled-back.json``): the
conductor, which may have given up on this agent meanwhile, asks for the
rollback again once it hears from it, and gets what was done.

Steps are do/undo pairs. Each change is first appended to the journal's
``log`` (``RestoreJournal.record(step, **args)``, fsynced) and then made;
a rollback plays the log backwards, calling ``_undo_<step>(data, entry,
steps)`` for each entry. The steps: ``stage`` (a tree built beside its
target), ``stop`` (the plan's units, started again in plan order),
``accounts`` (the database server's accounts and grants, loaded before
the databases; the accounts the load created are dropped and the saved
ones loaded back; grants it added to accounts that were there stay),
``load`` (a database, its pre-restore dump loaded back; ``replay``, the
binlogs of a point-in-time restore, changes only loaded databases and
has no undo of its own), ``import`` (a
command artifact, its saved copy loaded back), ``replace`` (a staged tree
swapped in with what it carried over; put back), ``start`` (a unit,
stopped again) and, on a Galera member (agent/galera_restore.py),
``galera_stop`` (the server stopped; the old cluster brought up again)
and ``galera_start`` (the server started on the restored data;
stopped). A new kind of change adds a ``record`` call before it and an
``_undo_<step>`` method; an undo must be safe when the change was
only partly made or not at all (the agent may die between the record and
the change), and when run twice. A journal without a ``log`` (written
before steps were logged) is undone the way it always was (_undo_legacy).
"""

from concurrent import futures
import contextlib
import json
import os
import shutil
import time

from oslo_log import log as logging

from osbackup.agent import galera_restore
from osbackup.agent import unit_check
from osbackup import archive
from osbackup import binlog_chain
from osbackup.definitions import mysql as mysql_definition
from osbackup.drivers import base as driver_base
from osbackup.drivers import binlog_archive
from osbackup import durable
from osbackup import exception
from osbackup import restore_phases
from osbackup import states
from osbackup import streams

LOG = logging.getLogger(__name__)

#: How long the record of a start-up rollback is kept for the conductor.
RECORD_RETENTION = 7 * 86400
RECORD_SUFFIX = '.rolled-back.json'
#: Units a host stops at the same time.
MAX_PARALLEL_STOPS = 8


class RestoreJournal:
    """What one restore changed on this node."""

    def __init__(self, directory, restore_id):
        self.restore_id = int(restore_id)
        self.path = os.path.join(directory, '%d.json' % self.restore_id)
        self.data = {'staged': {}, 'replaced': {}, 'stopped': [],
                     'loaded': [], 'keep': {}, 'carried': [],
                     'imported': []}
        with contextlib.suppress(FileNotFoundError):
            with open(self.path) as f:
                self.data.update(json.load(f))

    def save(self):
        durable.write_json(self.path, self.data)

    def record(self, step: str, **args) -> None:
        """Log a change before it is made (see the module docstring)."""
        self.data.setdefault('log', []).append(dict(args, step=step))
        self.save()

    def logged(self, step: str, **args) -> bool:
        """Whether this very change is in the log already."""
        wanted = dict(args, step=step)
        return wanted in self.data.get('log', [])

    def remove(self):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _loads_databases(plan: dict, phase: str) -> bool:
    """Whether a host loads its accounts and dumps in ``phase``."""
    return bool(plan['databases'] or plan.get('accounts')) and \
        restore_phases.database_phase(plan) == phase


def _step(host, action, target, status=states.SUCCEEDED, error=None):
    step = {'host': host, 'action': action, 'target': target,
            'status': status}
    if error:
        step['error'] = error
    return step


class PhaseFailed(exception.OsbackupError):
    """A phase stopped at a step; ``steps`` lists what was done."""

    code = 'restore_failed'

    def __init__(self, message, steps):
        super().__init__(message)
        self.steps = steps


class RestoreWorker:
    """Run restore phases on this node."""

    def __init__(self, conf, host, drivers, storage, service_manager):
        self.conf = conf
        self.host = host
        self.drivers = drivers
        self.storage = storage
        self.units = service_manager
        self.directory = os.path.join(conf.state_path, 'agent', 'restores')
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self.galera = galera_restore.GaleraMember(self)

    # -- helpers -------------------------------------------------------

    def _journal(self, params):
        return RestoreJournal(self.directory, params['restore_id'])

    def _context(self, params, progress, service=mysql_definition.NAME):
        return driver_base.TaskContext(
            task_id='restore-%s' % params['restore_id'],
            backup_id='restore-%s' % params['restore_id'], host=self.host,
            service=service, storage=self.storage,
            progress=progress)

    def _rollback_context(self, service=mysql_definition.NAME):
        return driver_base.TaskContext('rollback', 'rollback', self.host,
                                       service, self.storage)

    def _command(self, service):
        """The driver that loads ``service``'s command artifacts."""
        driver = self.drivers.get(service)
        if not isinstance(driver, driver_base.CommandRestore):
            raise exception.RestoreFailed(
                'No %s driver that loads command artifacts is enabled on %s'
                % (service, self.host))
        return driver

    def _allowed(self, service):
        """The directories the driver of ``service`` may restore."""
        driver = self.drivers.get(service)
        allowed = driver.restorable_paths() if driver is not None else None
        if not allowed:
            raise exception.RestoreFailed(
                'No file-set driver %s on %s' % (service, self.host))
        return driver, allowed

    def _mysql(self):
        driver = self.drivers.get(mysql_definition.NAME)
        if driver is None:
            raise exception.RestoreFailed('The mysql driver is not enabled '
                                          'on %s' % self.host)
        return driver

    def _shown(self, target):
        """A target as the service path operators know (/etc/nova)."""
        return '/' + os.path.relpath(target, self.conf.agent.root_path)

    @staticmethod
    def _staging(target, restore_id):
        return os.path.join(os.path.dirname(target), '.%s.osbackup-restore-%s'
                            % (os.path.basename(target), restore_id))

    def _run_steps(self, steps, action, target, func):
        start = time.monotonic()
        try:
            func()
        except exception.OsbackupError as exc:
            steps.append(_step(self.host, action, target, states.FAILED,
                               exc.message))
            raise PhaseFailed('%s %s failed: %s' % (action, target,
                                                    exc.message), steps)
        except OSError as exc:
            steps.append(_step(self.host, action, target, states.FAILED,
                               str(exc)))
            raise PhaseFailed('%s %s failed: %s' % (action, target, exc),
                              steps)
        finally:
            # Where a restore's time goes, step by step (tools/bench/e2e.py
            # reads it back).
            LOG.info('Restore step %s %s took %.3f s', action, target,
                     time.monotonic() - start)
        steps.append(_step(self.host, action, target))

    # -- phases --------------------------------------------------------

    def prepare(self, params, progress):
        """Verify every artifact and stage every file set; touch nothing."""
        plan = params['plan']
        journal = self._journal(params)
        steps = []
        self.galera.prepare(params, journal, steps)
        for item in plan['files']:
            self._stage(item, params['restore_id'], journal, steps, progress)
        for item in plan.get('physical', []):
            self._stage_physical(item, params, journal, steps, progress)
        accounts = plan.get('accounts')
        mysql = self._mysql() if plan['databases'] or accounts else None
        if accounts:
            art = accounts['artifact']
            self._run_steps(steps, 'verify', art['name'],
                            lambda: mysql.check_accounts(
                                self._context(params, progress),
                                art['location'], art['sha256']))
        for item in plan['databases']:
            art = item['artifact']
            self._run_steps(steps, 'verify', item['database'],
                            lambda: self._verify_dump(mysql, item, params,
                                                      progress))
            # load_db need not check it again (it still hashes it).
            journal.data.setdefault('verified', {})[art['location']] = \
                art['sha256']
        for item in plan.get('commands', []):
            art = item['artifact']
            self._run_steps(steps, 'verify', art['name'],
                            lambda: self._command(item['service'])
                            .check_artifact(
                                self._context(params, progress,
                                              item['service']),
                                art, bool(item.get('force'))))
        if plan['databases']:
            journal.save()
        staged = sorted(journal.data['staged'].values())
        if staged:
            # The swap renames the staged trees into place: their data
            # must be on disk first, or a crash leaves empty files live.
            self._run_steps(steps, 'sync', '%d staged tree(s)' % len(staged),
                            lambda: durable.sync_filesystems(staged))
        return steps

    def _verify_dump(self, mysql, item, params, progress):
        """The dump is sound, and not older than the live schema."""
        art = item['artifact']
        mysql.verify(self._context(params, progress), art['location'],
                     item['database'], art['sha256'])
        mysql.check_schema(item['database'], art, item.get('owner'),
                           bool(item.get('force')))

    def _stage(self, item, restore_id, journal, steps, progress):
        art = item['artifact']
        _driver, allowed = self._allowed(item['service'])
        foreign = [p for p in item['paths'] if p not in allowed]
        if foreign:
            steps.append(_step(self.host, 'verify', art['name'],
                               states.FAILED, 'not a %s path: %s'
                               % (item['service'], ', '.join(foreign))))
            raise PhaseFailed('Artifact %s names paths outside the %s '
                              'driver: %s' % (art['location'],
                                              item['service'],
                                              ', '.join(foreign)), steps)
        excludes = ['/' + e for e in art['meta'].get('excludes', [])]
        targets = {}
        for path in item['paths']:
            target = os.path.join(self.conf.agent.root_path,
                                  path.lstrip('/'))
            keep = [os.path.relpath(e, path) for e in excludes
                    if e.startswith(path + '/')]
            self._check_keep(steps, target, keep)
            staging = self._staging(target, restore_id)
            shutil.rmtree(staging, ignore_errors=True)
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            journal.data['staged'][target] = staging
            journal.data['keep'][target] = keep
            targets[path.lstrip('/')] = staging
            if not journal.logged('stage', target=target):
                journal.data.setdefault('log', []).append(
                    {'step': 'stage', 'target': target})
        journal.save()

        chain = item.get('chain')

        def open_base(ref):
            if ref not in chain:
                raise exception.ArtifactCorrupt(
                    'Artifact %s is incremental on backup %s, which the '
                    'restore plan does not name' % (art['location'], ref))
            return self._checked(chain[ref], progress)

        def unpack():
            # _checked proves every byte against the catalogue's sha256
            # before anything staged is used: no second hash per file.
            with self._checked(art, progress) as source:
                if chain is None:
                    archive.extract_archive(source, targets,
                                            hash_files=False)
                else:
                    archive.extract_chain(source, targets, open_base,
                                          hash_files=False)
        self._run_steps(steps, 'verify', art['name'], unpack)
        steps.extend(_step(self.host, 'stage', p) for p in item['paths'])

    @contextlib.contextmanager
    def _checked(self, art, progress):
        """Read a stored artifact; its sha256 must match the catalogue's."""
        with contextlib.closing(
                self.storage.open_reader(art['location'])) as raw:
            reader = streams.HashingReader(raw)
            try:
                yield _Progress(reader, progress)
            finally:
                reader.drain()
        if reader.sha256 != art['sha256']:
            raise exception.ArtifactCorrupt(
                'Artifact %s has sha256 %s, the catalogue says %s: '
                'checksum mismatch, refusing to restore it'
                % (art['location'], reader.sha256, art['sha256']))

    def _check_keep(self, steps, target, keep):
        """Excluded subtrees move into the new tree; mounts cannot."""
        for rel in keep:
            live = os.path.join(target, rel)
            if os.path.isdir(live) and not os.path.islink(live) and \
                    os.stat(live).st_dev != os.stat(target).st_dev:
                steps.append(_step(self.host, 'stage', self._shown(target),
                                   states.FAILED, '%s is a mount point'
                                   % self._shown(live)))
                raise PhaseFailed(
                    '%s is a mount point inside %s: it cannot be carried '
                    'over into the restored tree; restore other paths or '
                    'unmount it first' % (self._shown(live),
                                          self._shown(target)), steps)

    def _stage_physical(self, item, params, journal, steps, progress):
        """Build a physical copy's data directory beside the live one.

        The driver unpacks, checks and prepares it while the server still
        runs; replace swaps it in like a file set's staged tree, so
        rollback puts the old directory back the same way.
        """
        art, service = item['artifact'], item['service']
        driver = self.drivers.get(service)
        if not isinstance(driver, driver_base.PhysicalRestore):
            steps.append(_step(self.host, 'verify', art['name'],
                               states.FAILED, 'no physical driver'))
            raise PhaseFailed('No physical database driver %s on %s'
                              % (service, self.host), steps)
        # A Galera member's server stops in cluster_stop, not with units.
        if not params['plan'].get('galera') and \
                not set(driver.units()) & set(params['plan']['units']):
            steps.append(_step(self.host, 'verify', art['name'],
                               states.FAILED, 'no database server unit'))
            raise PhaseFailed(
                'None of the database server units [%s] units = %s exists '
                'on %s: a physical restore must stop the server first'
                % (service, ', '.join(driver.units()) or '(none)',
                   self.host), steps)
        target = driver.datadir()
        staging = self._staging(target, params['restore_id'])
        shutil.rmtree(staging, ignore_errors=True)
        journal.data['staged'][target] = staging
        journal.data.setdefault('physical', {})[target] = service
        if not journal.logged('stage', target=target):
            journal.data.setdefault('log', []).append(
                {'step': 'stage', 'target': target})
        journal.save()
        self._run_steps(steps, 'verify', art['name'], lambda: driver.stage(
            self._context(params, progress), art['location'], art['sha256'],
            target, staging))
        steps.append(_step(self.host, 'stage', self._shown(target)))

    def _check_physical_stopped(self, journal, steps):
        """No data directory is swapped under a running server."""
        for target, service in sorted(journal.data.get('physical',
                                                       {}).items()):
            if target in journal.data['replaced']:
                continue
            driver = self.drivers[service]
            self._run_steps(steps, 'check_stopped', self._shown(target),
                            lambda: driver.check_stopped(target))

    def stop(self, params, progress):
        """Stop every unit of the plan, all at once.

        Nothing has changed yet, so the order does not matter, and a
        slow unit (a daemon draining its requests) no longer holds the
        others up. Each unit is journaled before any is stopped.
        """
        journal = self._journal(params)
        units = params['plan']['units']
        new = [u for u in units if u not in journal.data['stopped']]
        if new:
            journal.data['stopped'].extend(new)
            journal.record('stop', units=new)
        errors = {}

        def stop(unit):
            try:
                self.units.stop(unit)
            except (exception.OsbackupError, OSError) as exc:
                errors[unit] = getattr(exc, 'message', None) or str(exc)

        if units:
            with futures.ThreadPoolExecutor(
                    min(len(units), MAX_PARALLEL_STOPS)) as pool:
                list(pool.map(stop, units))
        return self._unit_steps('stop', {u: errors.get(u) for u in units})

    # -- a Galera cluster (agent/galera_restore.py) --------------------

    def cluster_stop(self, params, progress):
        steps = []
        self.galera.cluster_stop(params, steps)
        return steps

    def bootstrap(self, params, progress):
        steps = []
        self.galera.bootstrap(params, steps)
        return steps

    def rejoin(self, params, progress):
        steps = []
        self.galera.rejoin(params, steps)
        if _loads_databases(params['plan'], 'rejoin'):
            # The cluster was down: it is up again now, load into it.
            self._load_databases(params, progress, self._journal(params),
                                 steps)
        return steps

    def cluster_undo(self, params, progress):
        steps = []
        self.galera.undo(params, steps)
        failed = [s for s in steps if s['status'] == states.FAILED]
        if failed:
            raise PhaseFailed('Undoing the cluster restore left %d step(s) '
                              'undone; see the steps' % len(failed), steps)
        return steps

    def load_db(self, params, progress):
        journal = self._journal(params)
        steps = []
        if _loads_databases(params['plan'], 'load_db'):
            self._load_databases(params, progress, journal, steps)
        for item in params['plan'].get('commands', []):
            self._load_command(params, progress, journal, steps, item)
        return steps

    def _load_command(self, params, progress, journal, steps, item):
        """Save what the artifact replaces, then load it."""
        art = item['artifact']
        if art['name'] in {e['name'] for e in journal.data['imported']}:
            return
        driver = self._command(item['service'])
        ctx = self._context(params, progress, item['service'])
        entry = {'service': item['service'], 'name': art['name'],
                 'pre_restore': None}

        def save_current():
            saved = driver.save_current(ctx, art)
            entry['pre_restore'] = saved.to_dict() if saved else None
        self._run_steps(steps, 'save', art['name'], save_current)
        journal.data['imported'].append(entry)
        journal.record('import', name=art['name'])
        self._run_steps(steps, 'load', art['name'],
                        lambda: driver.restore_artifact(
                            ctx, art, bool(item.get('force'))))
        for warning in ctx.warnings:
            LOG.warning('Restore %s: %s', params['restore_id'], warning)

    def _load_accounts(self, params, progress, journal, steps):
        """Save the server's accounts, then load the backup's."""
        if journal.data.get('accounts') is not None:
            return
        art = params['plan']['accounts']['artifact']
        mysql = self._mysql()
        ctx = self._context(params, progress)
        entry = {'before': [], 'pre_restore': None}

        def save_current():
            entry['before'] = mysql.list_accounts()
            entry['pre_restore'] = mysql.backup_accounts(ctx).to_dict()
        self._run_steps(steps, 'save', art['name'], save_current)
        journal.data['accounts'] = entry
        journal.record('accounts')
        self._run_steps(steps, 'load', art['name'], lambda: (
            mysql.load_accounts(ctx, art['location'], art['sha256'])))

    def _load_databases(self, params, progress, journal, steps):
        if params['plan'].get('accounts'):
            # Before the databases: a service's account exists when its
            # database comes back.
            self._load_accounts(params, progress, journal, steps)
        mysql = self._mysql()
        ctx = self._context(params, progress)
        present = set(mysql.list_databases())
        for item in params['plan']['databases']:
            db, art = item['database'], item['artifact']
            done = {e['database'] for e in journal.data['loaded']}
            if db in done:
                continue
            entry = {'database': db, 'pre_restore': None}
            if db in present:
                def save_current():
                    (artifact,) = mysql.backup(ctx, databases=[db])
                    entry['pre_restore'] = artifact.to_dict()
                self._run_steps(steps, 'save', db, save_current)
            journal.data['loaded'].append(entry)
            journal.record('load', database=db)
            verified = journal.data.get('verified', {}).get(
                art['location']) == art['sha256']
            self._run_steps(steps, 'load', db, lambda: mysql.load(
                ctx, art['location'], db, art['sha256'], verified=verified))
        spec = params['plan'].get('replay')
        if spec and not journal.data.get('replayed'):
            # A point-in-time restore: the binlogs from the loaded
            # backup's position on. A failure rolls back like a failed
            # load: the databases saved above are loaded again.
            if not journal.logged('replay'):
                journal.record('replay')
            self._run_steps(
                steps, 'replay', binlog_chain.replay_target(spec),
                lambda: binlog_archive.BinlogDriver(self.conf).replay(
                    ctx, spec))
            journal.data['replayed'] = True
            journal.save()

    def replace(self, params, progress):
        journal = self._journal(params)
        stamp = time.strftime('%Y%m%dT%H%M%S')
        steps = []
        self._check_physical_stopped(journal, steps)
        for target, staging in sorted(journal.data['staged'].items()):
            if target in journal.data['replaced']:
                continue

            def swap():
                if not journal.logged('replace', target=target):
                    journal.record('replace', target=target)
                # Subtrees the backup left out (instance disks, images)
                # are not the backup's to replace: they move across.
                for rel in journal.data['keep'].get(target, []):
                    live = os.path.join(target, rel)
                    if os.path.lexists(live):
                        journal.data['carried'].append([target, rel])
                        journal.save()
                        moved = os.path.join(staging, rel)
                        os.makedirs(os.path.dirname(moved), exist_ok=True)
                        os.rename(live, moved)
                orig = None
                if os.path.lexists(target):
                    orig = '%s.orig-%s' % (target, stamp)
                journal.data['replaced'][target] = orig
                journal.save()
                if orig:
                    os.rename(target, orig)
                os.rename(staging, target)
                durable.fsync_dir(os.path.dirname(target))
            self._run_steps(steps, 'replace', self._shown(target), swap)
        return steps

    def start(self, params, progress):
        journal = self._journal(params)
        steps = []
        for unit in params['plan']['units']:
            if os.path.exists(journal.path) and \
                    not journal.logged('start', unit=unit):
                journal.record('start', unit=unit)
            self._run_steps(steps, 'start', unit,
                            lambda: self.units.start(unit))
        return steps

    def check(self, params, progress):
        units = params['plan']['units']
        return self._unit_steps('check', unit_check.wait_settled(
            units, self.units.is_active, self.conf.agent.unit_check_settle,
            self.conf.agent.unit_check_timeout))

    def _unit_steps(self, action: str, errors: dict) -> list:
        """One step per unit of ``{unit: error or None}``; raise if any."""
        steps = [_step(self.host, action, unit,
                       states.FAILED if error else states.SUCCEEDED, error)
                 for unit, error in errors.items()]
        failed = ['%s: %s' % (u, e) for u, e in errors.items() if e]
        if failed:
            raise PhaseFailed('%s failed: %s' % (action, '; '.join(failed)),
                              steps)
        return steps

    def finish(self, params, progress):
        """Forget the journal; the .orig trees stay for the operator."""
        journal = self._journal(params)
        steps = [_step(self.host, 'keep', self._shown(orig))
                 for orig in sorted(filter(None, journal.data['replaced']
                                           .values()))]
        self._drop_pre_restore(journal.data)
        journal.remove()
        return steps

    def _drop_pre_restore(self, data):
        """Delete the copies saved of what the restore replaced."""
        for entry in data['loaded'] + data['imported'] + \
                [data.get('accounts') or {'pre_restore': None}]:
            if entry['pre_restore']:
                self.storage.delete(entry['pre_restore']['location'])

    def rollback(self, params, progress):
        """Undo the restore here; or say what start-up recovery undid."""
        journal = self._journal(params)
        record = self._recovered(params['restore_id'])
        if record is None or os.path.exists(journal.path):
            return self.undo(journal, progress)
        steps = [_step(self.host, 'recover', 'at agent start-up',
                       record['status'], record.get('error'))]
        steps += record['steps']
        if record['status'] != states.SUCCEEDED:
            raise PhaseFailed(record.get('error') or 'rollback at agent '
                              'start-up left steps undone', steps)
        return steps

    def undo(self, journal, progress=None):
        """Undo what the journal lists, last change first; never stop early."""
        steps = []
        data = journal.data
        if 'log' in data:
            for entry in reversed(data['log']):
                getattr(self, '_undo_' + entry['step'])(data, entry, steps)
        else:
            self._undo_legacy(data, steps)
        failed = [s for s in steps if s['status'] == states.FAILED]
        if failed:
            raise PhaseFailed('Rollback left %d step(s) undone; see the '
                              'steps' % len(failed), steps)
        self._drop_pre_restore(data)
        self._drop_storage_dirs(journal.restore_id)
        journal.remove()
        return steps

    # -- the undo of each step (see the module docstring) --------------

    def _undo_start(self, data, entry, steps):
        # The unit may be running on the restored files by now.
        unit = entry['unit']
        self._attempt(steps, 'stop', unit, lambda: self.units.stop(unit))

    def _undo_replace(self, data, entry, steps):
        target = entry['target']
        for carried, rel in data['carried']:
            if carried == target:
                self._attempt(steps, 'carry_back',
                              self._shown(os.path.join(target, rel)),
                              lambda: self._carry_back(data, target, rel))
        if target in data['replaced']:
            orig = data['replaced'][target]
            self._attempt(steps, 'put_back', self._shown(target),
                          lambda: self._put_back(target, orig))

    def _undo_import(self, data, entry, steps):
        for imported in data['imported']:
            pre = imported['pre_restore']
            if imported['name'] == entry['name'] and pre:
                self._attempt(steps, 'reload', imported['name'],
                              lambda: self._reload_command(imported, pre))

    def _undo_load(self, data, entry, steps):
        for loaded in data['loaded']:
            pre = loaded['pre_restore']
            if loaded['database'] == entry['database'] and pre:
                self._attempt(steps, 'reload', loaded['database'],
                              lambda: self._reload_database(loaded, pre))

    def _undo_accounts(self, data, entry, steps):
        saved = data.get('accounts')
        if not saved or not saved['pre_restore']:
            return      # nothing was loaded
        mysql = self._mysql()
        pre = saved['pre_restore']

        def put_back():
            added = sorted(set(mysql.list_accounts()) - set(saved['before']))
            mysql.drop_accounts(added)
            mysql.load_accounts(self._rollback_context(), pre['location'],
                                pre['sha256'])
        self._attempt(steps, 'reload', pre['name'], put_back)

    def _undo_stop(self, data, entry, steps):
        for unit in entry['units']:
            self._attempt(steps, 'start', unit,
                          lambda: self.units.start(unit))

    def _undo_replay(self, data, entry, steps):
        """Nothing of its own: the loads' undo puts the databases back."""

    def _undo_galera_stop(self, data, entry, steps):
        """The old data is back: bring the old cluster up again."""
        self.galera.bring_old_up(data, steps)

    def _undo_galera_start(self, data, entry, steps):
        """Stop the server started on the restored data."""
        self.galera.stop_new(data, steps)

    def _undo_stage(self, data, entry, steps):
        staging = data['staged'].get(entry['target'])
        if staging:
            shutil.rmtree(staging, ignore_errors=True)

    def _reload_database(self, entry, pre):
        self._mysql().load(self._rollback_context(), pre['location'],
                           entry['database'], pre['sha256'])

    def _undo_legacy(self, data, steps):
        """A journal from before steps were logged, undone as it was."""
        replaced = data['replaced']
        started_again = bool(replaced) and bool(data['stopped'])
        if started_again:
            # Units may be running on the restored files by now.
            for unit in data['stopped']:
                self._attempt(steps, 'stop', unit,
                              lambda: self.units.stop(unit))
        for target, rel in data['carried']:
            self._attempt(steps, 'carry_back',
                          self._shown(os.path.join(target, rel)),
                          lambda: self._carry_back(data, target, rel))
        for target, orig in sorted(replaced.items()):
            self._attempt(steps, 'put_back', self._shown(target),
                          lambda: self._put_back(target, orig))
        for staging in data['staged'].values():
            shutil.rmtree(staging, ignore_errors=True)
        for entry in reversed(data['loaded']):
            pre = entry['pre_restore']
            if pre:
                self._attempt(steps, 'reload', entry['database'],
                              lambda: self._reload_database(entry, pre))
        for entry in reversed(data['imported']):
            pre = entry['pre_restore']
            if pre:
                self._attempt(steps, 'reload', entry['name'],
                              lambda: self._reload_command(entry, pre))
        for unit in data['stopped']:
            self._attempt(steps, 'start', unit,
                          lambda: self.units.start(unit))

    def _reload_command(self, entry, pre):
        """Load back the copy a command artifact's load replaced."""
        # The copy is of this very server: its schema is the server's.
        self._command(entry['service']).restore_artifact(
            self._rollback_context(entry['service']), pre, True)

    def _drop_storage_dirs(self, restore_id):
        """Remove what is left of the restore's own storage directory.

        A pre-restore dump that failed (or was cut short by a crash and
        its partial file removed) leaves its empty directory behind; only
        a local storage has directories, and only empty ones go.
        """
        prefix = '%s/restore-%d' % (self.host, int(restore_id))
        for path in self.storage.cleanup_partials(prefix):
            LOG.info('Removed partial pre-restore dump %s', path)
        root = getattr(self.storage, 'path', None)
        if not isinstance(root, str):
            return
        top = os.path.join(root, prefix)
        for dirpath, _dirs, _files in os.walk(top, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)

    @staticmethod
    def _swapped(target, orig):
        """Whether the restored tree is the one at ``target`` now."""
        return orig is None or os.path.lexists(orig)

    def _carry_back(self, data, target, rel):
        orig = data['replaced'].get(target, '')
        swapped = target in data['replaced'] and \
            self._swapped(target, orig) and \
            not os.path.lexists(data['staged'][target])
        here = os.path.join(target if swapped else data['staged'][target],
                            rel)
        home = os.path.join(orig if swapped and orig else target, rel)
        if os.path.lexists(here) and not os.path.lexists(home):
            os.rename(here, home)

    def _put_back(self, target, orig):
        if not self._swapped(target, orig):
            return      # the old tree never left its place
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.unlink(target)
        if orig:
            os.rename(orig, target)
        durable.fsync_dir(os.path.dirname(target))

    def _attempt(self, steps, action, target, func):
        try:
            func()
        except (exception.OsbackupError, OSError) as exc:
            LOG.error('Rollback step %s %s failed: %s', action, target, exc)
            steps.append(_step(self.host, action, target, states.FAILED,
                               getattr(exc, 'message', None) or str(exc)))
        else:
            steps.append(_step(self.host, action, target))

    def recover(self) -> list:
        """Roll back restores a previous agent process left unfinished.

        What each rollback did is recorded for the conductor (see
        rollback()); the journal stays when steps failed, so the next
        start-up tries again.
        """
        undone = []
        for name in sorted(os.listdir(self.directory)):
            stem = name[:-len('.json')] if name.endswith('.json') else ''
            if not stem.isdigit():
                continue
            journal = RestoreJournal(self.directory, int(stem))
            LOG.warning('Rolling back restore %s, interrupted by an agent '
                        'restart', stem)
            record = {'status': states.SUCCEEDED, 'error': None,
                      'at': time.time()}
            try:
                record['steps'] = self.undo(journal)
            except PhaseFailed as exc:
                LOG.error('%s', exc.message)
                record.update(steps=exc.steps, status=states.FAILED,
                              error=exc.message)
            durable.write_json(self._record_path(stem), record)
            undone.extend(record['steps'])
        self._forget_records(time.time() - RECORD_RETENTION)
        return undone

    def _record_path(self, restore_id):
        return os.path.join(self.directory,
                            '%d%s' % (int(restore_id), RECORD_SUFFIX))

    def _recovered(self, restore_id) -> dict | None:
        """What the start-up rollback of a restore did, if one ran."""
        try:
            with open(self._record_path(restore_id)) as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _forget_records(self, before):
        for name in os.listdir(self.directory):
            if not name.endswith(RECORD_SUFFIX):
                continue
            path = os.path.join(self.directory, name)
            record = self._recovered(name[:-len(RECORD_SUFFIX)]) \
                if name[:-len(RECORD_SUFFIX)].isdigit() else None
            if record is None or record.get('at', 0) < before:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)


class _Progress:
    """Report bytes read from an artifact as restore progress."""

    def __init__(self, source, progress):
        self._source = source
        self._progress = progress

    def read(self, n=-1):
        data = self._source.read(n)
        if data:
            self._progress(len(data), 0)
        return data

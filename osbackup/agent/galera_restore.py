"""A Galera member's part of a cluster restore or recovery.

The conductor's plan gives each member a role (conductor/galera_restore.py):
``bootstrap`` (its physical copy is restored and it starts the new
cluster), ``join`` (it gets an empty data directory and copies the
restored data by SST) or ``recover`` (after an outage: whoever has the
highest seqno starts). The server is stopped and started as the units in
``[mysql] units`` through the service manager; the member that starts a
cluster runs ``[galera] bootstrap_command`` instead.

What the member changed is in the restore's journal: its role
(``galera``) and the steps ``galera_stop`` (its server stopped) and
``galera_start`` (started on the restored data) in the log, so the
rollback, asked by the conductor or run at agent start-up, plays them
backwards: it stops the new server, puts the old data directory back and
brings the old cluster up (the old bootstrap member starts it again, the
others rejoin it, retrying while it is not up yet).
"""

import contextlib
import os
import re
import shlex
import shutil
import time

from oslo_log import log as logging

from osbackup.drivers import galera_recovery
from osbackup import durable
from osbackup import exception
from osbackup import restore_phases
from osbackup.unit_managers import base as unit_base

LOG = logging.getLogger(__name__)

BOOTSTRAP = restore_phases.BOOTSTRAP
JOIN = restore_phases.JOIN
RECOVER = restore_phases.RECOVER
MARIABACKUP = 'mariabackup'
POLL = 1.0
#: Seconds between two attempts to join a cluster (a restore's, a rollback's).
REJOIN_PAUSE = 5
GRASTATE = ('# GALERA saved state\nversion: 2.1\nuuid:    %s\nseqno:   %d\n'
            'safe_to_bootstrap: 1\n')
GALERA_INFO = 'xtrabackup_galera_info'
#: ``uuid:seqno``, then (10.11) a space and the GTID domain.
_INFO_RE = re.compile(r'^([0-9a-f-]{36}):(-?\d+)')


class GaleraMember:
    """The Galera phases of one host's restore (see RestoreWorker)."""

    def __init__(self, worker):
        self.worker = worker
        self.conf = worker.conf
        self.host = worker.host

    # -- helpers -------------------------------------------------------

    @staticmethod
    def role(journal) -> str | None:
        return (journal.data.get('galera') or {}).get('role')

    def _physical(self):
        driver = self.worker.drivers.get(MARIABACKUP)
        if driver is None:
            raise exception.RestoreFailed(
                'The mariabackup driver is not enabled on Galera member %s: '
                'it names the data directory ([mariabackup] datadir)'
                % self.host)
        return driver

    def _client(self):
        driver = self.worker.drivers.get('mysql')
        if driver is None:
            driver = self._physical()._client
        return driver

    def datadir(self) -> str:
        return self._physical().datadir()

    def _save(self, journal, **changes):
        journal.data.setdefault('galera', {}).update(changes)
        journal.save()

    def _run(self, steps, action, target, func):
        self.worker._run_steps(steps, action, target, func)

    def _units(self):
        return list(self.conf.mysql.units)

    def bootstrap_server(self) -> None:
        """Run [galera] bootstrap_command (a new cluster from this node)."""
        argv = shlex.split(self.conf.galera.bootstrap_command)
        what = 'bootstrap command %s' % argv[0] if argv else 'bootstrap'
        if not argv:
            raise exception.RestoreFailed('[galera] bootstrap_command is '
                                          'empty')
        unit_base.check(unit_base.run(
            argv, self.conf.galera.bootstrap_timeout, what), what)

    def start_server(self) -> None:
        for unit in self._units():
            self.worker.units.start(unit)

    def stop_server(self) -> None:
        for unit in self._units():
            self.worker.units.stop(unit)

    def wait_synced(self, size: int | None, started: bool = True) -> None:
        """Wait (bounded) until this node is Synced in a cluster of size.

        ``started``: the server was started through its units here; if
        they stop running meanwhile (a failed SST), fail at once.
        """
        timeout = self.conf.galera.sync_timeout
        deadline = time.monotonic() + timeout
        last, joined = 'no answer', False
        while True:
            try:
                state = self._client().galera_state()
            except Exception as exc:
                last = 'no answer (%s)' % str(exc).strip()[:200]
            else:
                if state is None:
                    raise exception.RestoreFailed(
                        'The server on %s is not a Galera member (wsrep_on '
                        'is OFF)' % self.host)
                if state.usable and (size is None or state.size == size):
                    return
                last = '%s in a cluster of %d' % (state.state, state.size)
                if joined and state.size == 0:
                    # "node restart required": a failed IST or SST leaves
                    # the server running outside of any cluster.
                    raise exception.RestoreFailed(
                        'Galera node %s left the cluster while joining it '
                        '(a failed IST or SST?); see its error log'
                        % self.host)
                joined = joined or state.size > 0
            if started and not all(self.worker.units.is_active(u)
                                   for u in self._units()):
                raise exception.RestoreFailed(
                    'The database server on %s stopped while joining the '
                    'cluster (last: %s); see its error log' % (self.host,
                                                               last))
            if time.monotonic() >= deadline:
                raise exception.RestoreFailed(
                    'Galera node %s is not Synced in a cluster of %s within '
                    '%d s ([galera] sync_timeout); last: %s' % (
                        self.host, size or 'any size', timeout, last))
            time.sleep(POLL)

    # -- phases --------------------------------------------------------

    def prepare(self, params, journal, steps) -> None:
        """Record the role; a joiner stages an empty data directory."""
        cluster = params['plan'].get('galera')
        if not cluster:
            return
        self._save(journal, role=cluster['role'],
                   bootstrap=cluster['bootstrap'],
                   members=cluster['members'])
        if cluster['role'] != JOIN:
            return
        driver = self._physical()
        target = driver.datadir()
        staging = self.worker._staging(target, params['restore_id'])

        def stage():
            shutil.rmtree(staging, ignore_errors=True)
            journal.data['staged'][target] = staging
            journal.data.setdefault('physical', {})[target] = MARIABACKUP
            if not journal.logged('stage', target=target):
                journal.data.setdefault('log', []).append(
                    {'step': 'stage', 'target': target})
            journal.save()
            os.makedirs(staging, mode=0o700)
            driver._own(staging, target)
        self._run(steps, 'stage', '%s (empty: SST from %s)' % (
            target, cluster['bootstrap']), stage)

    def cluster_stop(self, params, steps) -> None:
        journal = self.worker._journal(params)
        if not journal.logged('galera_stop'):
            journal.record('galera_stop')
        for unit in self._units():
            self._run(steps, 'stop', unit,
                      lambda: self.worker.units.stop(unit))
        if self.role(journal) == RECOVER:
            found = {}
            datadir = self.datadir()

            def read():
                before = galera_recovery.read_grastate(datadir)
                found['p'] = galera_recovery.position(
                    self.host, datadir,
                    shlex.split(self.conf.galera.server_command))
                if int(before.get('seqno', -1)) < 0:
                    galera_recovery.record_position(datadir, found['p'])
            self._run(steps, 'read', 'last committed position', read)
            steps.append(self.worker_step(
                'position', galera_recovery.as_text(found['p'])))

    def worker_step(self, action, target):
        return {'host': self.host, 'action': action, 'target': target,
                'status': 'SUCCEEDED'}

    def bootstrap(self, params, steps) -> None:
        journal = self.worker._journal(params)
        role = self.role(journal)
        if role == RECOVER:
            if params.get('galera_error'):
                error = exception.RestoreFailed(params['galera_error'])
                self._run(steps, 'bootstrap', 'choose a member',
                          lambda: _raise(error))
            chosen = params.get('galera_bootstrap')
            if chosen != self.host:
                steps.append(self.worker_step(
                    'skip', 'bootstrap: %s has the highest seqno' % chosen))
                return
        datadir = self.datadir()
        self._run(steps, 'safe_to_bootstrap', datadir,
                  lambda: self._mark_safe(datadir, role == BOOTSTRAP))
        self._started(journal)
        self._run(steps, 'bootstrap', 'new cluster', self.bootstrap_server)
        self._run(steps, 'wait', 'Synced', lambda: self.wait_synced(
            None, started=False))

    def rejoin(self, params, steps) -> None:
        journal = self.worker._journal(params)
        cluster = journal.data['galera']
        first = cluster['bootstrap'] or params.get('galera_bootstrap')
        size = len(cluster['members'])
        target = 'Synced in a cluster of %d' % size
        if first == self.host:
            self._run(steps, 'wait', target,
                      lambda: self.wait_synced(size, started=False))
            return
        self._started(journal)
        # A joiner whose IST or SST failed copies the data anew when it
        # starts again: a transfer cut short is worth another start.
        self._run(steps, 'rejoin', target,
                  lambda: self._start_until_synced(size))

    @staticmethod
    def _started(journal) -> None:
        if not journal.logged('galera_start'):
            journal.record('galera_start')

    def _mark_safe(self, datadir, restored: bool) -> None:
        """safe_to_bootstrap: 1, at the backup's position if restored.

        A restored copy starts the cluster at the position mariadb-backup
        recorded (xtrabackup_galera_info): the cluster keeps its uuid.
        """
        info = os.path.join(datadir, GALERA_INFO)
        if not restored or not os.path.exists(info):
            if os.path.exists(os.path.join(datadir,
                                           galera_recovery.GRASTATE)):
                galera_recovery.mark_safe_to_bootstrap(datadir)
            return      # no state: the new cluster gets a history of its own
        with open(info) as f:
            text = f.read().strip()
        match = _INFO_RE.match(text)
        if match is None:
            raise exception.RestoreFailed('%s says %r, not uuid:seqno'
                                          % (GALERA_INFO, text[:100]))
        uuid, seqno = match.group(1), int(match.group(2))
        path = os.path.join(datadir, galera_recovery.GRASTATE)
        durable.write_bytes(path, (GRASTATE % (uuid, seqno)).encode())
        if os.geteuid() == 0:
            st = os.stat(datadir)
            os.chown(path, st.st_uid, st.st_gid)

    # -- undoing (the journal's galera_stop and galera_start steps) ---

    def undo(self, params, steps) -> None:
        """cluster_undo: stop the server, put the old data directory back.

        The undo of the log's ``galera_start`` and ``replace`` steps, last
        first; no member starts its server again here: the conductor runs
        the rollback, where they do (the undo of ``galera_stop``), once
        every member's server is stopped. The rollback plays these undos
        again, which then change nothing.
        """
        journal = self.worker._journal(params)
        for entry in reversed(journal.data.get('log', [])):
            if entry['step'] in ('galera_start', 'replace'):
                getattr(self.worker, '_undo_' + entry['step'])(
                    journal.data, entry, steps)

    def stop_new(self, data, steps) -> None:
        """Undo of galera_start: stop the server started on new data."""
        if (data.get('galera') or {}).get('role') == RECOVER:
            return      # a recovery changes no data: leave it running
        for unit in self._units():
            self.worker._attempt(steps, 'stop', unit,
                                 lambda: self.worker.units.stop(unit))

    def bring_old_up(self, data, steps) -> None:
        """Undo of galera_stop: with the old data back, the old cluster."""
        role = (data.get('galera') or {}).get('role')
        if role == BOOTSTRAP:
            datadir = self.datadir()
            self.worker._attempt(
                steps, 'safe_to_bootstrap', datadir,
                lambda: galera_recovery.mark_safe_to_bootstrap(datadir))
            self.worker._attempt(steps, 'bootstrap', 'old cluster',
                                 self.bootstrap_server)
            self.worker._attempt(steps, 'wait', 'Synced', lambda:
                                 self.wait_synced(None, started=False))
        elif role == JOIN:
            self.worker._attempt(steps, 'rejoin', 'old cluster',
                                 lambda: self._start_until_synced(None))

    def _start_until_synced(self, size: int | None) -> None:
        """Start the server until it is Synced; retry a failed join.

        The cluster to join may not be up yet (a rollback), or the
        transfer failed (a restore or a recovery): stop it and try again,
        ``[galera] rejoin_attempts`` times.
        """
        attempts = self.conf.galera.rejoin_attempts
        for attempt in range(1, attempts + 1):
            try:
                self.start_server()
                self.wait_synced(size)
                return
            except exception.OsbackupError as exc:
                LOG.warning('Galera member %s did not join the cluster '
                            '(attempt %d of %d): %s', self.host, attempt,
                            attempts, exc.message)
                if attempt == attempts:
                    raise
                with contextlib.suppress(exception.OsbackupError, OSError):
                    self.stop_server()
                time.sleep(REJOIN_PAUSE)


def _raise(exc):
    raise exc

"""The conductor service: RPC server plus its periodic jobs."""

from oslo_log import log as logging

from osbackup.agent import rpcapi as agent_rpcapi
from osbackup.conductor import backups as backups_mod
from osbackup.conductor import binlogs as binlogs_mod
from osbackup.conductor import dispatch as dispatch_mod
from osbackup.conductor import hearing as hearing_mod
from osbackup.conductor import manager as manager_mod
from osbackup.conductor import metrics as metrics_mod
from osbackup.conductor import notify as notify_mod
from osbackup.conductor import policies as policies_mod
from osbackup.conductor import prune as prune_mod
from osbackup.conductor import recorder as recorder_mod
from osbackup.conductor import records as records_mod
from osbackup.conductor import rejections as rejections_mod
from osbackup.conductor import restores as restores_mod
from osbackup.conductor import rings as rings_mod
from osbackup.conductor import rpcapi as conductor_rpcapi
from osbackup.conductor import tasks as tasks_mod
from osbackup.conductor import verify as verify_mod
from osbackup.db import api as db_api
from osbackup import rpc
from osbackup import service
from osbackup import version

LOG = logging.getLogger(__name__)


class ConductorService(service.RPCService):
    """Listens on ``osbackup-conductor`` (shared by every conductor)."""

    def __init__(self, conf, catalogue=None):
        super().__init__()
        self.conf = conf
        self.catalogue = catalogue or db_api.Catalogue.from_conf(conf)
        self.catalogue.check_schema()
        # Replies to calls take pool connections from the RPC threads.
        dispatcher = dispatch_mod.Dispatcher(
            conf, self.catalogue, agent_rpcapi.AgentAPI(conf),
            threads=rpc.fit_sender_pool(
                conf, conf.conductor.dispatch_threads,
                reserved=conf.conductor.rpc_threads))
        self.dispatcher = dispatcher
        self.backups = backups_mod.BackupOrchestrator(conf, self.catalogue,
                                                      dispatcher)
        self.restores = restores_mod.RestoreOrchestrator(
            conf, self.catalogue, dispatcher)
        self.verifier = verify_mod.VerifyOrchestrator(conf, self.catalogue,
                                                      dispatcher)
        self.pruner = prune_mod.Pruner(conf, self.catalogue, dispatcher)
        self.rings = rings_mod.RingDistributor(conf, self.catalogue,
                                               dispatcher)
        self.policies = policies_mod.PolicyRunner(
            conf, self.catalogue, self.backups, self.verifier)
        self.binlogs = binlogs_mod.BinlogScheduler(conf, self.catalogue,
                                                   self.backups)
        self.tracker = tasks_mod.TaskTracker(
            conf, self.catalogue, self.backups, self.restores,
            self.verifier, self.pruner)
        dispatcher.on_failed = self.tracker.finished
        self.recorder = recorder_mod.ReportRecorder(
            self.catalogue, self.tracker.ended,
            batch_size=conf.conductor.report_batch_size,
            retry_interval=conf.database.retry_interval,
            on_retried=self.tracker.recheck)
        self.tracker.hearing = self._hearing(conf)
        self.rejections = rejections_mod.Rejections(self.catalogue,
                                                    self.recorder)
        self.backups.on_success.append(self.rings.after_backup)
        self.backups.records = self.pruner.records = \
            records_mod.RecordKeeper(conf, self.catalogue)
        self.manager = manager_mod.ConductorManager(self)
        self.metrics = metrics_mod.MetricsExporter(conf, self.catalogue)
        self.notifications = notify_mod.Notifications(conf)
        for orchestrator in (self.backups, self.restores, self.verifier,
                             self.pruner):
            orchestrator.notifications = self.notifications
        self.agent_watch = notify_mod.AgentWatch(
            self.catalogue, self.notifications,
            conf.conductor.agent_down_time)

    def _hearing(self, conf) -> hearing_mod.Hearing:
        """Deadlines count only while this conductor hears (hearing.py).

        Probed once per deadline check; a probe waits for its answer and
        then for the recorder at most ``probe_timeout`` each, and two
        proofs further apart than two checks and those waits do not make
        one span.
        """
        api = conductor_rpcapi.ConductorAPI(conf)
        interval = conf.conductor.periodic_interval
        probe_timeout = max(5, interval)
        return hearing_mod.Hearing(
            lambda: api.mark(rpc.admin_context(), probe_timeout),
            self.recorder.wait_written,
            max_gap=2 * interval + 2 * probe_timeout,
            barrier_timeout=probe_timeout)

    def start(self):
        LOG.info('Starting osbackup-conductor %s on %s',
                 version.version_string(), self.conf.host)
        self.recorder.start()
        self.start_rpc(rpc.get_server(rpc.CONDUCTOR_TOPIC, self.conf.host,
                                      [self.manager],
                                      on_rejected=self.rejections.rejected),
                       pool_size=self.conf.conductor.rpc_threads)
        interval = self.conf.conductor.periodic_interval
        self.add_timer(interval, self.rejections.flush, 'agent-rejections')
        self.add_timer(interval, self.tracker.check_deadlines,
                       'check-deadlines')
        if self.conf.conductor.run_policies:
            self.add_timer(interval, self.policies.run_due, 'run-policies')
            self.add_timer(binlogs_mod.TICK, self.binlogs.tick,
                           'binlog-archive')
            self.add_timer(self.conf.conductor.prune_interval,
                           self.pruner.prune, 'prune')
        if self.conf.conductor.storage_sync_interval:
            self.add_timer(self.conf.conductor.storage_sync_interval,
                           self.backups.records.sync, 'storage-sync')
        self.metrics.start()
        if self.notifications.enabled:
            self.add_timer(interval, self.agent_watch.check, 'agent-watch')
        if self.conf.metrics.textfile_path:
            self.add_timer(self.conf.metrics.textfile_interval,
                           self.metrics.write_textfile, 'metrics-textfile')

    def stop(self):
        # The RPC server first: no report arrives after it, and every
        # report it handed over is written before the recorder ends.
        super().stop()
        self.metrics.stop()
        self.recorder.stop()
        self.dispatcher.stop()

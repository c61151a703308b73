"""The agent service: RPC server, heartbeats, recovery at start-up."""

import os
import time

from oslo_log import log as logging

from osbackup.agent import clock as clock_mod
from osbackup.agent import contact as contact_mod
from osbackup.agent import journal as journal_mod
from osbackup.agent import manager as manager_mod
from osbackup.agent import packages as packages_mod
from osbackup.agent import reporter as reporter_mod
from osbackup.agent import restore as restore_mod
from osbackup.agent import runner as runner_mod
from osbackup.agent import units as units_mod
from osbackup.conductor import rpcapi as conductor_rpcapi
from osbackup.definitions import binlog as binlog_definition
from osbackup import drivers as drivers_mod
from osbackup import rpc
from osbackup import service
from osbackup import storage as storage_mod
from osbackup import unit_managers
from osbackup import version

LOG = logging.getLogger(__name__)

# Finished tasks are remembered this long to answer redeliveries.
JOURNAL_RETENTION = 7 * 86400
RPC_DISPATCH_THREADS = 2
#: Seconds a stopping agent spends sending the reports still queued; the
#: journal keeps the rest for its next start.
STOP_REPORT_WAIT = 3


class AgentService(service.RPCService):
    """One node's agent: listens on ``osbackup-agent.<host>``."""

    def __init__(self, conf):
        super().__init__()
        self.conf = conf
        self.host = conf.host
        self.drivers = drivers_mod.load(conf)
        self.storage = storage_mod.get_storage(conf)
        self.conductor = conductor_rpcapi.ConductorAPI(conf)
        self.service_manager = unit_managers.get_manager(conf)
        self.units = units_mod.UnitCache(self.service_manager)
        journal = journal_mod.Journal(
            os.path.join(conf.state_path, 'agent', 'tasks'))
        self.reporter = reporter_mod.ConductorReporter(
            self.conductor, self.host, journal)
        self.clock = clock_mod.ConductorClock()
        self.packages = packages_mod.PackageVersions(
            conf.agent.package_versions_interval)
        self.contact = contact_mod.ConductorContact(
            self.conductor, self.host, self.clock,
            conf.agent.conductor_check_interval,
            retry_interval=conf.agent.report_interval)
        self.runner = runner_mod.TaskRunner(
            conf, self.host, self.drivers, self.storage, self.reporter,
            journal, restore_mod.RestoreWorker(
                conf, self.host, self.drivers, self.storage,
                self.service_manager), clock=self.clock,
            packages=self.packages)
        self.manager = manager_mod.AgentManager(
            self.runner, conf.agent.max_parallel_tasks)

    def info(self) -> dict:
        """What the heartbeat tells the conductor about this node."""
        present = []
        for name, driver in sorted(self.drivers.items()):
            try:
                if driver.is_present():
                    present.append(name)
            except Exception as exc:
                LOG.warning('Driver %s could not check its service: %s',
                            name, exc)
        try:
            free = self.storage.free_bytes()
        except OSError:
            free = None
        info = {'drivers': sorted(self.drivers), 'services': present,
                'units': {name: self.units.of(name, self.drivers[name])
                          for name in present},
                'tasks': sorted(self.runner.held),
                'free_bytes': free, 'storage': self.storage.name,
                'root_path': self.conf.agent.root_path, 'time': time.time()}
        # Cached: one dpkg-query every [agent] package_versions_interval.
        info['packages'] = self.packages.of_services(present)
        info.update(self._membership(present))
        if binlog_definition.NAME in present:
            info['binlog'] = self.drivers[binlog_definition.NAME].describe()
        return info

    def _membership(self, present) -> dict:
        """Cluster facts (``galera``) of the first present driver with any.

        The conductor groups the agents of one cluster by them.
        """
        for name in present:
            membership = getattr(self.drivers[name], 'membership', None)
            facts = membership() if membership is not None else {}
            if facts:
                return facts
        return {}

    def heartbeat(self) -> None:
        self.conductor.heartbeat(rpc.admin_context(), self.host,
                                 version.version_string(), self.info())

    def start(self):
        LOG.info('Starting osbackup-agent %s on %s with drivers %s',
                 version.version_string(), self.host,
                 ', '.join(sorted(self.drivers)))
        # Recover first: a rollback the conductor sends for an interrupted
        # restore must not run while this process rolls it back itself.
        self.runner.recover()
        # Before the RPC server: the first round trip usually measures
        # the conductor's clock before the first task is judged.
        self.add_timer(self.contact.retry_interval, self.contact.tick,
                       'conductor-check')
        # run_task only queues work for the runner's pool, so two
        # dispatcher threads suffice; oslo.messaging's default of 64 per
        # server costs RSS and GIL contention for nothing.
        self.start_rpc(rpc.get_server(
            rpc.AGENT_TOPIC, self.host, [self.manager],
            on_verified=lambda seal: self.clock.add_received(seal['iat'])),
            pool_size=RPC_DISPATCH_THREADS)
        self.runner.journal.prune(JOURNAL_RETENTION)
        self.add_timer(self.conf.agent.report_interval, self.heartbeat,
                       'heartbeat')

    def stop(self):
        super().stop()
        self.manager.stop()
        # The results of the tasks that just ended, sent while the
        # transport is still open, then the goodbye behind them: the
        # conductor marks this agent stopped at once, so a backup started
        # now fails at once instead of after agent_down_time.
        self.reporter.stop(STOP_REPORT_WAIT)
        if self.reporter.failing:
            LOG.warning('Not telling the conductor this agent stops: the '
                        'broker does not take its reports; it shows as '
                        'down after [conductor] agent_down_time')
            return
        try:
            self.conductor.goodbye(rpc.admin_context(), self.host, retry=0)
        except Exception as exc:
            LOG.warning('Could not tell the conductor this agent stops '
                        '(%s): it shows as down after [conductor] '
                        'agent_down_time', exc)

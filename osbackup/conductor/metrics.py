"""Prometheus metrics of the conductor, computed from the catalogue.

Nothing is kept in memory between scrapes but two error counters: every
scrape (or textfile write) asks the catalogue a fixed handful of grouped
queries (``Catalogue.backup_status``, agents, task and restore counts),
so any conductor reports the same truth and a restarted one loses
nothing. Labels are hosts, services, task kinds and states: bounded by
the fleet, never a backup id.
"""

import calendar
import datetime
import os
import threading
import time

from oslo_log import log as logging
from oslo_utils import netutils
import prometheus_client
from prometheus_client import core
from prometheus_client import exposition

LOG = logging.getLogger(__name__)

_HS = ['host', 'service']


def _ts(when) -> float | None:
    """Seconds since the epoch of a naive-UTC catalogue datetime."""
    if when is None:
        return None
    return calendar.timegm(when.utctimetuple()) + when.microsecond / 1e6


def _gauge(name, doc, labels):
    return core.GaugeMetricFamily(name, doc, labels=labels)


class CatalogueCollector:
    """A prometheus_client collector reading the catalogue on collect()."""

    def __init__(self, catalogue, agent_down_time: int):
        self.catalogue = catalogue
        self.agent_down_time = agent_down_time
        self._lock = threading.Lock()
        self.errors = 0

    def describe(self):
        # Without describe() the registry would call collect() (and so
        # query the catalogue) when the collector is registered.
        return []

    def collect(self):
        with self._lock:
            try:
                families = list(self._families())
                up = 1
            except Exception as exc:
                # A scrape must still answer: catalogue_up says why it is
                # short, and the error counter shows how often.
                self.errors += 1
                LOG.warning('Metrics: cannot read the catalogue: %s',
                            str(exc).splitlines()[0] if str(exc) else exc)
                families, up = [], 0
        yield from families
        catalogue_up = _gauge('osbackup_catalogue_up',
                              '1 when the last scrape could read the '
                              'catalogue.', [])
        catalogue_up.add_metric([], up)
        yield catalogue_up
        errors = core.CounterMetricFamily(
            'osbackup_catalogue_errors', 'Scrapes that could not read the '
            'catalogue since the conductor started.', labels=[])
        errors.add_metric([], self.errors)
        yield errors

    def _families(self):
        cat = self.catalogue
        agents = cat.list_agents(self.agent_down_time)
        present = {a['host']: (a['info'] or {}).get('services') or []
                   for a in agents}
        yield from self._backup_families(cat.backup_status(
            agent_services=present))
        up = _gauge('osbackup_agent_up', '1 when the agent sent a heartbeat '
                    'within [conductor] agent_down_time.', ['host'])
        beat = _gauge('osbackup_agent_last_heartbeat_timestamp_seconds',
                      'Time of the agent\'s last heartbeat.', ['host'])
        for a in agents:
            up.add_metric([a['host']], 1 if a['state'] == 'up' else 0)
            beat.add_metric([a['host']], _iso_ts(a['last_heartbeat']))
        yield up
        yield beat
        tasks = _gauge('osbackup_tasks', 'Tasks in the catalogue by kind '
                       '(backup, restore_*, verify, delete, ...) and state.',
                       ['kind', 'state'])
        for kind, status, count in cat.task_counts():
            tasks.add_metric([kind, status], count)
        yield tasks
        restores = _gauge('osbackup_restores', 'Restores in the catalogue '
                          'by result.', ['result'])
        for status, count in cat.restore_counts():
            restores.add_metric([status], count)
        yield restores
        yield from self._binlog_families(cat.binlog_newest())

    @staticmethod
    def _binlog_families(newest: dict):
        last = _gauge('osbackup_binlog_last_event_timestamp_seconds',
                      'Time of the newest binlog event archived from the '
                      'database server of the host.', ['host'])
        age = _gauge('osbackup_binlog_last_event_age_seconds',
                     'Seconds since the newest archived binlog event of '
                     'the host (it grows while the server writes nothing, '
                     'too).', ['host'])
        now = time.time()
        for host, meta in sorted(newest.items()):
            when = _iso_ts((meta or {}).get('end_time'))
            if when is not None:
                last.add_metric([host], when)
                age.add_metric([host], max(0.0, now - when))
        return [last, age]

    @staticmethod
    def _backup_families(status):
        specs = [
            ('osbackup_backup_last_success_timestamp_seconds',
             'End of the newest successful backup of the service on the '
             'host; 0 when it was never backed up (found by its agent, or '
             'only failed), so an age alert fires for it too.',
             'last_success', lambda t: _ts(t) if t else 0),
            ('osbackup_backup_last_attempt_timestamp_seconds',
             'End (or start, while running) of the newest backup attempt.',
             'last_attempt', _ts),
            ('osbackup_backup_last_attempt_success',
             '1 when the newest finished backup attempt succeeded, 0 when '
             'it failed or timed out.', 'last_result',
             lambda r: {'SUCCEEDED': 1, 'FAILED': 0}.get(r)),
            ('osbackup_backup_last_duration_seconds',
             'Duration of the newest successful backup.', 'last_duration',
             None),
            ('osbackup_backup_stored_bytes',
             'Bytes of the available artifacts of the service on the host '
             '(primary copies).', 'stored_bytes', None),
            ('osbackup_backup_chain_length',
             'Backups in the current chain: 1 for a full backup, plus one '
             'per incremental on it.', 'chain_length', None),
            ('osbackup_backup_last_verify_timestamp_seconds',
             'End of the newest verification of a backup holding the '
             'service.', 'last_verify', _ts),
            ('osbackup_backup_last_verify_success',
             '1 when the newest verification found no problem.',
             'last_verify_result', lambda r: {'OK': 1, 'CORRUPT': 0}.get(r)),
        ]
        families = [(_gauge(name, doc, _HS), field, conv)
                    for name, doc, field, conv in specs]
        for row in status:
            labels = [row['host'], row['service']]
            for family, field, conv in families:
                value = row[field]
                if conv is not None and (value is not None or
                                         field == 'last_success'):
                    value = conv(value)
                if value is not None:
                    family.add_metric(labels, value)
        return [family for family, _field, _conv in families]


def _iso_ts(text: str | None) -> float | None:
    if not text:
        return None
    return _ts(datetime.datetime.fromisoformat(text.rstrip('Z')))


def parse_listen(value: str) -> tuple[str, int]:
    """('127.0.0.1', 9871) from ``127.0.0.1:9871`` or ``[::1]:9871``."""
    host, port = netutils.parse_host_port(value)
    if not host or port is None:
        raise ValueError('[metrics] listen must be host:port, not %r'
                         % value)
    return host, port


class MetricsExporter:
    """Serves the collector over HTTP and/or writes it to a textfile."""

    def __init__(self, conf, catalogue):
        self.conf = conf
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self.collector = CatalogueCollector(
            catalogue, conf.conductor.agent_down_time)
        self.registry.register(self.collector)
        self._server = None
        self._thread = None

    @property
    def enabled(self) -> bool:
        return bool(self.conf.metrics.listen or
                    self.conf.metrics.textfile_path)

    def start(self) -> None:
        if self.conf.metrics.listen:
            host, port = parse_listen(self.conf.metrics.listen)
            self._server, self._thread = exposition.start_http_server(
                port, addr=host, registry=self.registry)
            LOG.info('Metrics on http://%s:%d/metrics', host, port)

    def write_textfile(self) -> None:
        """Write the metrics to [metrics] textfile_path, atomically."""
        path = self.conf.metrics.textfile_path
        # write_to_textfile writes a temporary file and renames it, so
        # node_exporter never reads half a file.
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        prometheus_client.write_to_textfile(path, self.registry)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

"""The conductor's Prometheus metrics, read back as Prometheus parses them."""

import datetime
import os
import time
import urllib.request

from oslo_db import exception as db_exc
from prometheus_client import exposition
from prometheus_client import parser
import sqlalchemy as sa

from osbackup.conductor import metrics
from osbackup.db import api
from osbackup import states
from osbackup.tests import base


def samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for family in parser.text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def key(name, **labels):
    return (name, frozenset(labels.items()))


class MetricsTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cat = api.Catalogue('sqlite://')
        self.cat.sync()
        self.cat.record_heartbeat('h1', '1', {'services': ['nova', 'mysql',
                                                           'keystone']})

    def task(self, service, status, host='h1'):
        backup = self.cat.create_backup([host], [service])
        task = self.cat.create_task('backup', host, service, {}, 3600,
                                    backup_id=backup['id'])
        self.cat.task_started(task['id'])
        self.cat.task_finished(task['id'], status, {'artifacts': [{
            'name': service, 'kind': 'files', 'location': '/x',
            'size': 123, 'sha256': 'a' * 64, 'meta': {}}]}, None)

    def scrape(self, exporter=None):
        exporter = exporter or metrics.MetricsExporter(self.cfg.conf,
                                                       self.cat)
        return samples(exposition.generate_latest(
            exporter.registry).decode())

    def test_a_scrape_costs_the_same_queries_whatever_the_fleet(self):
        statements = []
        sa.event.listen(self.cat.engine, 'before_cursor_execute',
                        lambda conn, cur, stmt, *a: statements.append(stmt))

        def selects_of_a_scrape():
            del statements[:]
            self.scrape()
            return [st for st in statements if st.startswith('SELECT')]
        self.task('nova', states.SUCCEEDED)
        small = selects_of_a_scrape()
        for i in range(20):
            host = 'h%d' % (i + 2)
            self.cat.record_heartbeat(host, '1', {'services': ['nova']})
            self.task('nova', states.SUCCEEDED, host=host)
        large = selects_of_a_scrape()
        self.assertIn('osbackup_backup_last_success_timestamp_seconds',
                      {name for name, _labels in self.scrape()})
        # Agents, the three freshness queries, task and restore counts,
        # the newest binlog segment per host.
        self.assertEqual(7, len(small), small)
        self.assertEqual(small, large)

    def test_what_the_catalogue_says(self):
        self.task('nova', states.SUCCEEDED)
        self.task('mysql', states.FAILED)
        got = self.scrape()
        ok = got[key('osbackup_backup_last_success_timestamp_seconds',
                     host='h1', service='nova')]
        self.assertGreater(ok, 1.7e9)
        # Never succeeded: 0, so "time() - x > 26h" fires for it too.
        self.assertEqual(0, got[key(
            'osbackup_backup_last_success_timestamp_seconds', host='h1',
            service='mysql')])
        self.assertEqual(0, got[key(
            'osbackup_backup_last_success_timestamp_seconds', host='h1',
            service='keystone')])
        self.assertEqual(1, got[key('osbackup_backup_last_attempt_success',
                                    host='h1', service='nova')])
        self.assertEqual(0, got[key('osbackup_backup_last_attempt_success',
                                    host='h1', service='mysql')])
        self.assertEqual(123, got[key('osbackup_backup_stored_bytes',
                                      host='h1', service='nova')])
        self.assertEqual(1, got[key('osbackup_agent_up', host='h1')])
        self.assertEqual(1, got[key('osbackup_tasks', kind='backup',
                                    state='FAILED')])
        self.assertEqual(1, got[key('osbackup_catalogue_up')])
        self.assertEqual(0, got[key('osbackup_catalogue_errors_total')])
        # Bounded cardinality: no label carries an id.
        for name, labels in got:
            self.assertLessEqual(set(dict(labels)),
                                 {'host', 'service', 'kind', 'state',
                                  'result'}, name)

    def test_a_down_catalogue_still_answers(self):
        exporter = metrics.MetricsExporter(self.cfg.conf, self.cat)
        exporter.collector.catalogue = _Broken()
        got = self.scrape(exporter)
        self.assertEqual(0, got[key('osbackup_catalogue_up')])
        self.assertEqual(1, got[key('osbackup_catalogue_errors_total')])
        self.assertFalse([k for k in got if k[0].startswith(
            'osbackup_backup_')])

    def test_textfile(self):
        self.task('nova', states.SUCCEEDED)
        path = os.path.join(self.state_dir, 'tf', 'osbackup.prom')
        self.flags(group='metrics', textfile_path=path)
        metrics.MetricsExporter(self.cfg.conf, self.cat).write_textfile()
        with open(path) as f:
            got = samples(f.read())
        self.assertIn(key('osbackup_agent_up', host='h1'), got)
        self.assertEqual(['osbackup.prom'], os.listdir(os.path.dirname(path)))

    def test_http_endpoint(self):
        self.flags(group='metrics', listen='127.0.0.1:0')
        exporter = metrics.MetricsExporter(self.cfg.conf, self.cat)
        self.assertRaises(ValueError, metrics.parse_listen, '127.0.0.1')
        exporter.start()
        self.addCleanup(exporter.stop)
        port = exporter._server.server_port
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port,
                                    timeout=10) as resp:
            got = samples(resp.read().decode())
        self.assertEqual(1, got[key('osbackup_agent_up', host='h1')])

    def test_listen_forms(self):
        self.assertEqual(('127.0.0.1', 9871),
                         metrics.parse_listen('127.0.0.1:9871'))
        self.assertEqual(('::1', 9871), metrics.parse_listen('[::1]:9871'))


class _Broken:
    def list_agents(self, *a):
        raise db_exc.DBConnectionError('gone')


class BinlogMetricsTest(base.TestCase):

    def test_newest_event_time_and_age_per_host(self):
        when = time.time() - 30
        end = datetime.datetime.fromtimestamp(
            int(when), datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        last, age = metrics.CatalogueCollector._binlog_families(
            {'db1': {'end_time': end}, 'db2': {'end_time': None}})
        self.assertEqual([(('db1',), int(when))],
                         [((s.labels['host'],), s.value)
                          for s in last.samples])
        (sample,) = age.samples
        self.assertGreaterEqual(sample.value, 29)
        self.assertLess(sample.value, 120)

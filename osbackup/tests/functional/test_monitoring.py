"""Monitoring tells the truth: metrics scraped over HTTP, backup check.

A real conductor serving ``[metrics] listen`` and writing a textfile, an
agent whose nova backs up and whose mysql fails on purpose (bad
credentials), the real CLI. Catalogue rows are then aged by hand to move
time forward: the check turns WARNING, then CRITICAL.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import fixtures
from oslo_config import cfg
import oslo_messaging as messaging
import testtools

from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.unit.conductor import test_metrics


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class MonitoringTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.fleet = fleet = fleet_mod.Fleet()
        self.addCleanup(fleet.cleanup)
        fleet_mod.make_controller_tree(fleet.node_root('ctl'))
        self.port = _free_port()
        self.textfile = os.path.join(fleet.dir, 'textfile', 'osbackup.prom')
        self.events = self.listen(fleet)
        fleet.start_conductor(sections={
            'metrics': {'listen': '127.0.0.1:%d' % self.port,
                        'textfile_path': self.textfile,
                        'textfile_interval': '1'},
            'oslo_messaging_notifications': {'driver': 'messagingv2'}})
        fleet.start_agent('ctl', {
            'agent': {'drivers': 'mysql,nova'},
            'mysql': {'user': 'nosuchuser', 'password': 'wrong-Pw-123',
                      'host': '127.0.0.1'}})
        self.ctl = fleet.host('ctl')
        fleet.wait_for_agents([self.ctl])

    def listen(self, fleet):
        """A real consumer of the fleet's notifications on the broker."""
        conf = cfg.ConfigOpts()
        conf([], project='osbackup-test', default_config_files=[])
        transport = messaging.get_notification_transport(
            conf, url=fleet.transport_url)
        events = []

        class Endpoint:
            def info(self, ctxt, publisher_id, event_type, payload, meta):
                events.append(('INFO', publisher_id, event_type, payload))

            def error(self, ctxt, publisher_id, event_type, payload, meta):
                events.append(('ERROR', publisher_id, event_type, payload))

        listener = messaging.get_notification_listener(
            transport, [messaging.Target(topic='notifications',
                                         exchange=fleet.exchange)],
            [Endpoint()], executor='threading')
        listener.start()

        def stop():
            listener.stop()
            listener.wait()
            transport.cleanup()
        self.addCleanup(stop)
        return events

    def wait_events(self, wanted, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = [e[2] for e in self.events]
            if all(w in seen for w in wanted):
                return
            time.sleep(0.2)
        self.fail('notifications %s not all seen: %s' % (wanted, self.events))

    def scrape(self):
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics'
                                    % self.port, timeout=10) as resp:
            return test_metrics.samples(resp.read().decode())

    def check(self, *argv):
        proc = self.fleet.manage('backup', 'check', *argv, check=False)
        return proc.returncode, proc.stdout

    def age(self, hours):
        fleet_mod.sql('UPDATE tasks SET finished_at = finished_at - '
                      'INTERVAL %d HOUR' % hours, self.fleet.catalogue_db)

    def test_metrics_and_check_tell_the_truth(self):
        backup, proc = self.fleet.manage_json('backup', 'create', '--wait',
                                              check=False)
        self.assertEqual(1, proc.returncode)
        got = self.scrape()
        key = test_metrics.key
        nova = key('osbackup_backup_last_success_timestamp_seconds',
                   host=self.ctl, service='nova')
        self.assertGreater(got[nova], 1.7e9)
        self.assertEqual(0, got[key(
            'osbackup_backup_last_success_timestamp_seconds', host=self.ctl,
            service='mysql')])
        self.assertEqual(0, got[key('osbackup_backup_last_attempt_success',
                                    host=self.ctl, service='mysql')])
        self.assertGreater(got[key('osbackup_backup_stored_bytes',
                                   host=self.ctl, service='nova')], 0)
        self.assertEqual(1, got[key('osbackup_agent_up', host=self.ctl)])
        self.assertEqual(1, got[key('osbackup_catalogue_up')])
        # The textfile collector's copy says the same.
        self.assertTrue(os.path.exists(self.textfile))

        code, line = self.check('--service', 'nova')
        self.assertEqual(0, code, line)
        self.assertTrue(line.startswith('OSBACKUP OK'), line)
        code, line = self.check()
        self.assertEqual(2, code, line)
        self.assertIn('%s/mysql never backed up, last attempt failed'
                      % self.ctl, line)
        code, out = self.check('--format', 'json', '--host', self.ctl)
        report = json.loads(out)
        self.assertEqual({'nova': 'OK', 'mysql': 'CRITICAL'},
                         {i['service']: i['state'] for i in report['items']})

        self.age(30)
        code, line = self.check('--service', 'nova')
        self.assertEqual(1, code, line)
        self.assertIn('last backup 30h ago', line)
        self.age(20)
        self.assertEqual(2, self.check('--service', 'nova')[0])
        self.assertEqual(0, self.check('--service', 'nova',
                                       '--max-age', '3d')[0])
        older = self.scrape()[nova]
        self.assertAlmostEqual(got[nova] - 50 * 3600, older, delta=5)

        # The consumer saw the backup start and fail, from this conductor.
        self.wait_events(['backup.create.start', 'backup.create.error'])
        (priority, publisher, _e, payload), = [
            e for e in self.events if e[2] == 'backup.create.error']
        self.assertEqual(('ERROR', 'osbackup-conductor.%s'
                          % self.fleet.host('conductor')),
                         (priority, publisher))
        data = payload['osbackup_object.data']
        self.assertEqual((backup['id'], 'FAILED', [self.ctl]),
                         (data['id'], data['status'], data['hosts']))
        self.assertGreater(data['size'], 0)
        self.assertEqual('1.0', payload['osbackup_object.version'])


class UnreachableCatalogueTest(testtools.TestCase):
    """No fleet: the check alone against a catalogue nobody serves."""

    def test_unreachable_catalogue_is_unknown(self):
        conf = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'osbackup.conf')
        with open(conf, 'w') as f:
            f.write('[DEFAULT]\ntransport_url = rabbit://guest:guest@'
                    '127.0.0.1:%d/\n[database]\nconnection = mysql+pymysql'
                    '://root@127.0.0.1:%d/none\n'
                    % (_free_port(), _free_port()))
        proc = subprocess.run(
            [sys.executable, '-m', 'osbackup.cmd.manage', '--config-file',
             conf, 'backup', 'check'], capture_output=True, text=True,
            timeout=120)
        self.assertEqual(3, proc.returncode, proc.stdout + proc.stderr)
        self.assertIn('OSBACKUP UNKNOWN - cannot read the catalogue',
                      proc.stdout)
        self.assertNotIn('Traceback', proc.stderr)

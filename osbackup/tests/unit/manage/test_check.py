"""``osbackup-manage backup check``: exit codes, output, aged catalogues."""

import datetime
import io
import json
from unittest import mock

from oslo_db import exception as db_exc
from oslo_utils import timeutils
import sqlalchemy as sa

from osbackup.db import api
from osbackup.db import models
from osbackup.manage import backups
from osbackup import states
from osbackup.tests import base


class _Env:
    def __init__(self, conf, catalogue):
        self.conf = conf
        self._catalogue = catalogue

    @property
    def catalogue(self):
        if isinstance(self._catalogue, Exception):
            raise self._catalogue
        return self._catalogue


class CheckTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cat = api.Catalogue('sqlite://')
        self.cat.sync()
        self.cmd = backups.BackupCommands(_Env(self.cfg.conf, self.cat))

    def backed_up(self, host, service, status=states.SUCCEEDED):
        backup = self.cat.create_backup([host], [service])
        task = self.cat.create_task('backup', host, service, {}, 3600,
                                    backup_id=backup['id'])
        self.cat.task_finished(task['id'], status, {'artifacts': [{
            'name': service, 'kind': 'files', 'location': '/x', 'size': 5,
            'sha256': 'a' * 64, 'meta': {}}]}, None)

    def age(self, hours):
        """Move every backup ``hours`` into the past."""
        with self.cat.session() as s:
            for task in s.scalars(sa.select(models.Task)):
                task.finished_at -= datetime.timedelta(hours=hours)

    def check(self, **kw):
        out = io.StringIO()
        with mock.patch('sys.stdout', out):
            code = self.cmd.check(**kw)
        return code, out.getvalue()

    def test_ok_then_warning_then_critical_as_time_passes(self):
        self.backed_up('h1', 'nova')
        self.backed_up('h1', 'mysql')
        code, line = self.check()
        self.assertEqual(0, code)
        self.assertTrue(line.startswith('OSBACKUP OK - all 2 backed up'),
                        line)
        self.age(30)
        code, line = self.check()
        self.assertEqual(1, code)
        self.assertIn('h1/mysql last backup 30h ago', line)
        self.assertIn('|', line)
        self.age(20)
        self.assertEqual(2, self.check()[0])
        self.assertEqual(0, self.check(max_age='3d')[0])
        self.assertEqual(1, self.check(warning='1d', critical='3d')[0])

    def test_filters_and_json(self):
        self.backed_up('h1', 'nova')
        self.backed_up('h2', 'nova', states.FAILED)
        self.assertEqual(0, self.check(hosts=['h1'])[0])
        code, text = self.check(services=['nova'], fmt='json')
        self.assertEqual(2, code)
        report = json.loads(text)
        self.assertEqual('CRITICAL', report['state'])
        items = {(i['host'], i['service']): i for i in report['items']}
        self.assertEqual('OK', items[('h1', 'nova')]['state'])
        self.assertLess(items[('h1', 'nova')]['age'], 60)
        self.assertEqual('CRITICAL', items[('h2', 'nova')]['state'])
        self.assertIsNone(items[('h2', 'nova')]['age'])
        self.assertEqual(2, self.check(hosts=['h1', 'h9'])[0])

    def test_service_an_agent_found_but_nobody_backed_up(self):
        self.backed_up('h1', 'nova')
        self.cat.record_heartbeat('h1', '1', {'services': ['nova',
                                                           'keystone']})
        code, line = self.check()
        self.assertEqual(2, code)
        self.assertIn('h1/keystone never backed up', line)

    def test_unreachable_catalogue_is_unknown(self):
        self.cmd = backups.BackupCommands(_Env(
            self.cfg.conf, db_exc.DBConnectionError('no route to db')))
        code, line = self.check()
        self.assertEqual(3, code)
        self.assertIn('UNKNOWN - cannot read the catalogue: no route', line)

    def test_empty_catalogue_is_unknown(self):
        self.assertEqual(3, self.check()[0])

    def test_bad_arguments_are_unknown(self):
        code, line = self.check(max_age='soon')
        self.assertEqual(3, code)
        self.assertIn('Invalid duration', line)
        self.assertEqual(3, self.check(max_age='1d', warning='2h')[0])
        self.assertEqual(3, self.check(warning='3d', critical='1d')[0])

    def test_verified_within(self):
        self.backed_up('h1', 'nova')
        code, line = self.check(verified_within='7d')
        self.assertEqual(1, code)
        self.assertIn('not verified within 7d', line)


class CheckClockTest(base.TestCase):
    """Ages come from the catalogue clock: a later 'now' ages the rows."""

    def test_later_now(self):
        cat = api.Catalogue('sqlite://')
        cat.sync()
        cmd = backups.BackupCommands(_Env(self.cfg.conf, cat))
        backup = cat.create_backup(['h1'], ['nova'])
        task = cat.create_task('backup', 'h1', 'nova', {}, 3600,
                               backup_id=backup['id'])
        cat.task_finished(task['id'], states.SUCCEEDED, {'artifacts': []})
        later = timeutils.utcnow() + datetime.timedelta(hours=27)
        with mock.patch.object(timeutils, 'utcnow', return_value=later), \
                mock.patch('sys.stdout', io.StringIO()):
            self.assertEqual(1, cmd.check())


class MissingSecretsTest(CheckTest):

    def backed_up_lacking(self, host, service, missing):
        backup = self.cat.create_backup([host], [service])
        task = self.cat.create_task('backup', host, service, {}, 3600,
                                    backup_id=backup['id'])
        self.cat.task_finished(task['id'], states.SUCCEEDED, {'artifacts': [{
            'name': service, 'kind': 'files', 'location': '/x', 'size': 5,
            'sha256': 'a' * 64, 'meta': {'secrets_missing': missing}}]},
            None)

    def test_a_critical_secret_missing_from_the_newest_backup(self):
        self.backed_up_lacking('h1', 'octavia', [
            {'path': '/etc/octavia/certs', 'critical': True}])
        self.backed_up_lacking('h1', 'horizon', [
            {'path': '/var/lib/openstack-dashboard/secret_key',
             'critical': False}])
        self.cat.record_heartbeat('h1', '1', {'services': ['octavia',
                                                           'horizon']})
        code, line = self.check()
        self.assertEqual(2, code)
        self.assertIn('h1/octavia newest backup lacks secret(s) '
                      '/etc/octavia/certs (critical)', line)
        self.assertIn('h1/horizon newest backup lacks secret(s) '
                      '/var/lib/openstack-dashboard/secret_key', line)
        self.assertEqual(1, self.check(services=['horizon'])[0])

    def test_only_the_newest_backup_counts(self):
        self.backed_up_lacking('h1', 'octavia', [
            {'path': '/etc/octavia/certs', 'critical': True}])
        self.backed_up_lacking('h1', 'octavia', [])
        self.cat.record_heartbeat('h1', '1', {'services': ['octavia']})
        self.assertEqual(0, self.check()[0])

    def test_a_host_where_the_service_is_gone_is_not_flagged(self):
        self.backed_up_lacking('h1', 'octavia', [
            {'path': '/etc/octavia/certs', 'critical': True}])
        self.cat.record_heartbeat('h1', '1', {'services': []})
        code, line = self.check()
        self.assertEqual(0, code, line)

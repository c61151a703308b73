"""The OVN driver against a real ovsdb-server (Debian's ovn-central).

Each test starts a private ovsdb-server on a unix socket in a temporary
directory, serving a northbound database made from the OVN NB schema,
adds rows with ovn-nbctl, backs up, changes, restores and compares.
"""

import json
import os
import shutil
import subprocess
import tempfile

from oslo_config import fixture as config_fixture
import testtools

from osbackup.agent import restore as restore_mod
from osbackup.drivers import base
from osbackup.drivers import ovn
from osbackup import exception
from osbackup.storage import local
from osbackup.tests import base as test_base
from osbackup.tests.functional import ovsdb_server

NB_FILE = '/var/lib/ovn/ovnnb_db.db'


class OVNTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.top = tempfile.mkdtemp(prefix='osbackup-ovn-')
        self.addCleanup(shutil.rmtree, self.top, ignore_errors=True)
        self.root = os.path.join(self.top, 'root')
        self.nb = ovsdb_server.OvsdbServer(
            self.top, os.path.join(self.root, NB_FILE.lstrip('/')))
        self.nb.create()
        self.nb.start()
        self.addCleanup(self.nb.stop)
        conf = self.useFixture(config_fixture.Config(test_base.CONF))
        conf.config(group='ovn', nb_connection=self.nb.connection,
                    sb_connection='', nb_db_file=NB_FILE,
                    ovsdb_client=self.nb.tools['ovsdb-client'],
                    ovsdb_tool=self.nb.tools['ovsdb-tool'],
                    command_timeout=30)
        conf.config(state_path=os.path.join(self.top, 'state'))
        conf.config(group='agent', root_path=self.root)
        self.storage = local.LocalStorage(test_base.CONF,
                                          path=os.path.join(self.top, 'st'))
        self.ctx = base.TaskContext(task_id='t', backup_id='1', host='ctl',
                                    service='ovn', storage=self.storage)
        self.driver = ovn.OVNDriver(test_base.CONF)

    def populate(self):
        self.nb.nbctl('ls-add', 'net1')
        self.nb.nbctl('lsp-add', 'net1', 'port1')
        self.nb.nbctl('lsp-add', 'net1', 'port2')
        self.nb.nbctl('ls-add', 'net2')
        self.nb.nbctl('set', 'Logical_Switch', 'net2',
                      'external_ids:network_name=private')
        return self.nb.switches()

    def change(self):
        self.nb.nbctl('ls-del', 'net1')
        self.nb.nbctl('ls-add', 'net3')
        self.nb.nbctl('lsp-add', 'net3', 'port9')

    def artifact_dict(self, art):
        return {'name': art.name, 'kind': art.kind, 'location': art.location,
                'sha256': art.sha256, 'size': art.size, 'meta': art.meta}


class OVNDriverTest(OVNTestCase):

    def test_backup_change_restore_compare(self):
        self.assertTrue(self.driver.is_present())
        before = self.populate()
        [art] = self.driver.backup(self.ctx)
        self.assertEqual(('ovn-nb', 'command'), (art.name, art.kind))
        self.assertEqual('OVN_Northbound', art.meta['database'])
        with open('/usr/share/ovn/ovn-nb.ovsschema') as f:
            self.assertEqual(json.load(f)['version'],
                             art.meta['schema_version'])
        self.assertEqual('ovsdb-client backup', art.meta['source'])
        self.assertEqual([], self.ctx.warnings)
        self.change()
        self.assertNotEqual(before, self.nb.switches())
        item = self.artifact_dict(art)
        self.driver.check_artifact(self.ctx, item, force=False)
        self.driver.restore_artifact(self.ctx, item, force=False)
        self.assertEqual(before, self.nb.switches())
        self.assertIn('private', self.nb.nbctl(
            'get', 'Logical_Switch', 'net2', 'external_ids'))

    def test_other_schema_version_refused_without_force(self):
        self.populate()
        [art] = self.driver.backup(self.ctx)
        item = self.artifact_dict(art)
        # A server on another schema version: the same schema renumbered.
        with open('/usr/share/ovn/ovn-nb.ovsschema') as f:
            schema = json.load(f)
        schema['version'] = '1.0.0'
        other = os.path.join(self.top, 'other.ovsschema')
        with open(other, 'w') as f:
            json.dump(schema, f)
        self.nb.stop()
        os.unlink(self.nb.db)
        self.nb.schema = other
        self.nb.create()
        self.nb.start()
        self.nb.nbctl('ls-add', 'kept')
        for call in (self.driver.check_artifact,
                     self.driver.restore_artifact):
            exc = self.assertRaises(exception.RestoreFailed, call, self.ctx,
                                    item, False)
            self.assertIn('schema version %s, the running ovsdb-server '
                          '1.0.0; refused' % art.meta['schema_version'],
                          exc.message)
            self.assertNotIn('\n', exc.message)
        self.assertEqual([('kept', [])], self.nb.switches())
        self.driver.restore_artifact(self.ctx, item, force=True)
        self.assertIn('net1', [n for n, _p in self.nb.switches()])

    def test_corrupt_artifact_restores_nothing(self):
        before = self.populate()
        [art] = self.driver.backup(self.ctx)
        item = dict(self.artifact_dict(art), sha256='0' * 64)
        self.change()
        changed = self.nb.switches()
        exc = self.assertRaises(exception.ArtifactCorrupt,
                                self.driver.restore_artifact, self.ctx,
                                item, False)
        self.assertIn('nothing was restored', exc.message)
        self.assertEqual(changed, self.nb.switches())
        self.assertNotEqual(before, changed)

    def test_stopped_server_copies_the_file_with_a_warning(self):
        before = self.populate()
        self.nb.stop()
        [art] = self.driver.backup(self.ctx)
        self.assertEqual('database file', art.meta['source'])
        self.assertEqual(1, len(self.ctx.warnings))
        self.assertIn('is not answering on %s' % self.nb.connection,
                      self.ctx.warnings[0])
        self.assertIn('copied the database file', self.ctx.warnings[0])
        # The copy restores into a running server like any other.
        self.nb.start()
        self.change()
        self.driver.restore_artifact(self.ctx, self.artifact_dict(art),
                                     False)
        self.assertEqual(before, self.nb.switches())

    def test_stopped_server_restore_builds_a_new_file(self):
        before = self.populate()
        [art] = self.driver.backup(self.ctx)
        self.change()
        self.nb.stop()
        self.driver.restore_artifact(self.ctx, self.artifact_dict(art),
                                     False)
        self.assertIn('its database file', self.ctx.warnings[-1])
        origs = [n for n in os.listdir(os.path.dirname(self.nb.db))
                 if '.orig-' in n]
        self.assertEqual(1, len(origs))
        self.nb.start()
        self.assertEqual(before, self.nb.switches())

    def test_stopped_clustered_database_is_copied_and_rebuilt(self):
        self.nb.stop()
        os.unlink(self.nb.db)
        self.nb.create_cluster()
        self.nb.start()
        before = self.populate()
        self.nb.stop()
        [art] = self.driver.backup(self.ctx)
        self.assertEqual('ovsdb-tool cluster-to-standalone',
                         art.meta['source'])
        self.nb.start()
        self.change()
        self.nb.stop()
        self.driver.restore_artifact(self.ctx, self.artifact_dict(art),
                                     False)
        self.assertIn('new one-member cluster', self.ctx.warnings[-1])
        self.assertIn('join-cluster', self.ctx.warnings[-1])
        self.assertEqual(0, subprocess.run(
            [self.nb.tools['ovsdb-tool'], 'db-is-clustered', self.nb.db],
            timeout=30).returncode)
        self.nb.start()
        self.assertEqual(before, self.nb.switches())

    def test_no_server_and_no_file_is_one_clear_error(self):
        self.nb.stop()
        os.unlink(self.nb.db)
        # Not present (a compute node with ovn-controller only)...
        os.makedirs(os.path.join(self.root, 'etc/ovn'))
        self.assertFalse(self.driver.is_present())
        exc = self.assertRaises(exception.OsbackupError, self.driver.backup,
                                self.ctx)
        self.assertIn('ovsdb-server is not answering on %s'
                      % self.nb.connection, exc.message)
        self.assertIn('no database file at', exc.message)
        self.assertNotIn('\n', exc.message)


class OVNRestoreJournalTest(OVNTestCase):
    """The agent's load_db phase and its rollback, on the real server."""

    def test_load_then_rollback_brings_the_replaced_database_back(self):
        before = self.populate()
        [art] = self.driver.backup(self.ctx)
        self.change()
        changed = self.nb.switches()
        worker = restore_mod.RestoreWorker(
            test_base.CONF, 'ctl', {'ovn': self.driver}, self.storage, None)
        params = {'restore_id': 7, 'plan': {
            'files': [], 'databases': [], 'units': [],
            'commands': [{'service': 'ovn', 'force': False,
                          'artifact': self.artifact_dict(art)}]}}
        steps = worker.prepare(params, lambda b, f: None)
        self.assertEqual([('verify', 'ovn-nb', 'SUCCEEDED')],
                         [(s['action'], s['target'], s['status'])
                          for s in steps])
        steps = worker.load_db(params, lambda b, f: None)
        self.assertEqual(['save', 'load'], [s['action'] for s in steps])
        self.assertEqual(before, self.nb.switches())
        steps = worker.rollback(params, lambda b, f: None)
        self.assertEqual([('reload', 'ovn-nb', 'SUCCEEDED')],
                         [(s['action'], s['target'], s['status'])
                          for s in steps])
        self.assertEqual(changed, self.nb.switches())
        # The pre-restore copy is gone with the journal.
        self.assertEqual([], [o for o in self.storage.list('ctl/restore-7')])

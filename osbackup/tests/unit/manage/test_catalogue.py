"""Storage records and ``catalogue rebuild`` on a real local target."""

import hashlib
import io
import json
import os
from unittest import mock

from osbackup.conductor import records as records_keeper
from osbackup.conductor import restore_plan
from osbackup.db import api
from osbackup import drcheck
from osbackup import exception
from osbackup.manage import backups
from osbackup.manage import catalogue as catalogue_mod
from osbackup import rebuild as rebuild_mod
from osbackup import records
from osbackup import states
from osbackup import storage as storage_mod
from osbackup.tests import base


class _Env:
    def __init__(self, conf, catalogue):
        self.conf = conf
        self.catalogue = catalogue


class StoredBackups(base.TestCase):
    """Backups really stored on a local target, with their records."""

    encrypt = False

    def setUp(self):
        super().setUp()
        self.store = os.path.join(self.state_dir, 'store')
        self.flags(group='storage', local_path=self.store,
                   record_key_file=self.write_key('record.key', b'r7' * 32))
        if self.encrypt:
            self.flags(group='storage',
                       encryption_key_file=self.write_key('enc.key',
                                                          b'e3' * 32))
        self.old = self._catalogue()
        self.new = self._catalogue()
        self.quiet = rebuild_mod.Progress(out=io.StringIO())

    def _catalogue(self):
        cat = api.Catalogue('sqlite://')
        cat.sync()
        return cat

    def _put(self, key, data):
        storage = storage_mod.get_storage(self.cfg.conf)
        with storage.open_writer(key) as w:
            w.write(data)
            return w.commit()

    def backup(self, host='ctl1', service='nova', data=b'x' * 5000,
               base_art=None, cat=None):
        """A finished backup with one stored artifact, and its record."""
        cat = cat or self.old
        backup = cat.create_backup([host], [service], None, ['local'])
        params = {'base': {'artifact_id': base_art}} if base_art else {}
        task = cat.create_task('backup', host, service, params, 3600,
                               backup_id=backup['id'])
        key = '%s/%s/%s/%s.tar.zst' % (host, backup['uuid'], service,
                                       service)
        meta = {'level': 'incremental' if base_art else 'full',
                'files': 3}
        cat.task_finished(task['id'], states.SUCCEEDED, {'artifacts': [{
            'name': service, 'kind': 'files', 'location': self._put(key,
                                                                    data),
            'size': len(data), 'sha256': hashlib.sha256(data).hexdigest(),
            'meta': meta}]}, None)
        self.assertEqual(states.SUCCEEDED,
                         cat.finish_backup_if_done(backup['id']))
        written = records_keeper.RecordKeeper(
            self.cfg.conf, cat).backup_ended(backup['id'])
        self.assertEqual(1, len(written))
        return cat.get_backup(backup['id'])

    def rebuild(self, **kw):
        return rebuild_mod.rebuild(self.cfg.conf, self.new,
                                   progress=self.quiet, **kw)

    def record_path(self, backup):
        found = [loc for loc, _ in records.stored(
            storage_mod.get_storage(self.cfg.conf),
            records.key_of(backup['uuid']))]
        self.assertEqual(1, len(found))
        return found[0]

    @staticmethod
    def _same(backup):
        return ({k: backup[k] for k in ('uuid', 'hosts', 'services',
                                        'created_at', 'status')},
                [(a['host'], a['service'], a['name'], a['sha256'],
                  a['size'], a['location']) for a in backup['artifacts']])


class RebuildTest(StoredBackups):

    def test_rebuild_recreates_backups_and_chains(self):
        full = self.backup()
        incr = self.backup(base_art=full['artifacts'][0]['id'],
                           data=b'y' * 300)
        other = self.backup(host='ctl2', service='keystone')
        out = self.rebuild()
        self.assertEqual({'imported': 3, 'existing': 0, 'incomplete': [],
                          'rejected': []},
                         {k: out[k] for k in ('imported', 'existing',
                                              'incomplete', 'rejected')})
        for b in (full, incr, other):
            got = self.new.get_backup(b['id'])
            self.assertEqual(self._same(b), self._same(got))
        # The chain is back, by uuid: the incremental's base is the full.
        new_incr = self.new.get_backup(incr['id'])
        parent = new_incr['artifacts'][0]['parent_id']
        self.assertEqual(self.new.get_backup(full['id'])['artifacts'][0]
                         ['id'], parent)
        art = new_incr['artifacts'][0]
        chain = restore_plan._chain(new_incr, art,
                                    self.new.artifact_chains([art['id']]))
        self.assertEqual([str(full['id'])], list(chain))

    def test_second_rebuild_imports_nothing(self):
        self.backup()
        self.backup(host='ctl2')
        self.assertEqual(2, self.rebuild()['imported'])
        before = self.new.list_backups()
        out = self.rebuild()
        self.assertEqual((0, 2), (out['imported'], out['existing']))
        self.assertEqual(before, self.new.list_backups())

    def test_dry_run_changes_nothing(self):
        self.backup()
        out = self.rebuild(dry_run=True)
        self.assertEqual(1, out['imported'])
        self.assertEqual([], self.new.list_backups())

    def test_tampered_record_is_rejected_by_name(self):
        good = self.backup()
        bad = self.backup(host='ctl2')
        path = self.record_path(bad)
        with open(path, 'rb') as f:
            data = f.read()
        if self.encrypt:
            data = data[:-5] + bytes([data[-5] ^ 1]) + data[-4:]
        else:
            data = data.replace(b'"ctl2"', b'"evil"', 1)
        with open(path, 'wb') as f:
            f.write(data)
        out = self.rebuild()
        self.assertEqual(1, out['imported'])
        self.assertEqual(1, len(out['rejected']))
        self.assertIn(path, out['rejected'][0]['record'])
        self.assertRegex(out['rejected'][0]['reason'],
                         'failed authentication|cannot be decrypted')
        self.assertEqual([good['uuid']],
                         [b['uuid'] for b in self.new.list_backups()])

    def test_foreign_record_is_rejected(self):
        self.backup()
        self.flags(group='storage', deployment_id='other-cloud')
        out = self.rebuild()
        self.assertEqual(0, out['imported'])
        self.assertIn("belongs to deployment", out['rejected'][0]['reason'])
        self.assertEqual([], self.new.list_backups())

    def test_record_with_another_key_is_rejected(self):
        self.backup()
        self.flags(group='storage', deployment_id='x',
                   record_key_file=self.write_key('k2', b'q9' * 32))
        out = rebuild_mod.rebuild(self.cfg.conf, self.new,
                                  progress=self.quiet)
        self.assertEqual(0, out['imported'])
        self.assertEqual(1, len(out['rejected']))

    def test_deleted_or_truncated_artifact_is_incomplete(self):
        gone = self.backup()
        cut = self.backup(host='ctl2')
        os.unlink(gone['artifacts'][0]['location'])
        with open(cut['artifacts'][0]['location'], 'r+b') as f:
            f.truncate(100)
        out = self.rebuild()
        self.assertEqual(0, out['imported'])
        reasons = {e['uuid']: e['reason'] for e in out['incomplete']}
        self.assertIn('missing', reasons[gone['uuid']])
        self.assertIn('has 100 bytes', reasons[cut['uuid']])
        self.assertEqual([], self.new.list_backups())

    def test_incremental_on_an_incomplete_base_is_incomplete(self):
        full = self.backup()
        incr = self.backup(base_art=full['artifacts'][0]['id'])
        os.unlink(full['artifacts'][0]['location'])
        out = self.rebuild()
        self.assertEqual(0, out['imported'])
        reasons = {e['uuid']: e['reason'] for e in out['incomplete']}
        self.assertIn('base backup %s' % full['uuid'], reasons[incr['uuid']])

    def test_unreachable_storage_changes_nothing(self):
        self.backup()
        self.flags(group='storage', local_path='/nonexistent/osbackup')
        self.assertRaises(exception.StorageError, self.rebuild)
        self.assertEqual([], self.new.list_backups())

    def test_interrupted_rebuild_finishes_on_rerun(self):
        for host in ('a1', 'a2', 'a3'):
            self.backup(host=host)
        real = self.new.import_backup
        calls = []

        def dies_on_second(rec):
            calls.append(rec['uuid'])
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(rec)
        with mock.patch.object(self.new, 'import_backup', dies_on_second):
            self.assertRaises(KeyboardInterrupt, self.rebuild)
        self.assertEqual(1, len(self.new.list_backups()))
        out = self.rebuild()
        self.assertEqual((2, 1), (out['imported'], out['existing']))
        self.assertEqual(3, len({b['uuid']
                                 for b in self.new.list_backups()}))
        self.assertEqual(3, len(self.new.list_backups()))

    def test_new_backups_never_reuse_imported_objects(self):
        """Ids restart in a new catalogue: objects are named by uuid."""
        # The new controller backs up before anyone rebuilds.
        early = self.backup(cat=self.new, data=b'new' * 10)
        old = self.backup(data=b'old' * 10)
        self.assertEqual(early['id'], old['id'])
        self.assertNotEqual(early['artifacts'][0]['location'],
                            old['artifacts'][0]['location'])
        out = self.rebuild()
        self.assertEqual((1, 1), (out['imported'], out['existing']))
        imported = [b for b in self.new.list_backups()
                    if b['uuid'] == old['uuid']][0]
        self.assertNotEqual(early['id'], imported['id'])
        got = self.new.get_backup(imported['id'])
        self.assertEqual(str(old['id']),
                         got['artifacts'][0]['meta']['backup_ref'])
        self.assertEqual(old['artifacts'][0]['sha256'],
                         got['artifacts'][0]['sha256'])
        # And the id sequence continues past every imported id.
        highest = max(b['id'] for b in self.new.list_backups())
        later = self.new.create_backup(['ctl1'], [], None, ['local'])
        self.assertGreater(later['id'], highest)

    def test_recorded_ids_are_kept_in_an_empty_catalogue(self):
        first = self.backup()
        second = self.backup()
        self.rebuild()
        self.assertEqual({first['uuid']: first['id'],
                          second['uuid']: second['id']},
                         {b['uuid']: b['id']
                          for b in self.new.list_backups()})
        later = self.new.create_backup(['ctl1'], [], None, ['local'])
        self.assertEqual(second['id'] + 1, later['id'])

    def test_prune_forgets_the_record(self):
        backup = self.backup()
        keeper = records_keeper.RecordKeeper(self.cfg.conf, self.old)
        self.record_path(backup)
        keeper.forget(backup)
        self.assertEqual([], list(records.stored(
            storage_mod.get_storage(self.cfg.conf), records.PREFIX)))

    def test_record_contents(self):
        backup = self.backup()
        path = self.record_path(backup)
        self.assertTrue(path.endswith('.json.enc' if self.encrypt
                                      else '.json'))
        with storage_mod.get_storage(self.cfg.conf).open_reader(path) as f:
            env = json.loads(f.read())
        rec = env['record']
        self.assertEqual(records.FORMAT, env['format'])
        self.assertEqual(64, len(env['hmac']))
        self.assertEqual(backup['uuid'], rec['uuid'])
        self.assertEqual('full', rec['level'])
        art = rec['artifacts'][0]
        self.assertEqual(backup['artifacts'][0]['sha256'], art['sha256'])
        self.assertEqual({'level': 'full', 'files': 3}, art['meta'])
        self.assertTrue(rec['osbackup_version'])

    def test_cli_json_summary(self):
        self.backup()
        cmd = catalogue_mod.CatalogueCommands(_Env(self.cfg.conf, self.new))
        out = io.StringIO()
        with mock.patch('sys.stdout', out), \
                mock.patch('sys.stderr', io.StringIO()):
            code = cmd.rebuild(fmt='json')
        self.assertEqual(0, code)
        self.assertEqual(1, json.loads(out.getvalue())['imported'])


class EncryptedRebuildTest(RebuildTest):
    encrypt = True


class DrCheckTest(StoredBackups):
    """``backup check --dr``: storage alone, no catalogue."""

    def check(self, **kw):
        return drcheck.check(self.cfg.conf, progress=self.quiet, **kw)

    def test_newest_of_every_host_and_service_is_read(self):
        self.backup()
        newer = self.backup(data=b'z' * 7000)
        other = self.backup(host='ctl2', service='keystone')
        report = self.check()
        self.assertEqual(('OK', 0), (report['state'], report['exit_code']))
        self.assertEqual(
            [('ctl1', 'nova', newer['uuid']),
             ('ctl2', 'keystone', other['uuid'])],
            [(i['host'], i['service'], i['backup_uuid'])
             for i in report['items']])
        self.assertEqual(newer['artifacts'][0]['sha256'],
                         report['items'][0]['checked'][0]['sha256'])

    def test_changed_content_is_critical(self):
        backup = self.backup()
        path = backup['artifacts'][0]['location']
        with open(path, 'r+b') as f:
            f.seek(-1, 2)
            last = f.read(1)
            f.seek(-1, 2)
            f.write(bytes([last[0] ^ 1]))
        report = self.check()
        self.assertEqual(('CRITICAL', 2),
                         (report['state'], report['exit_code']))
        self.assertRegex(report['items'][0]['problems'][0]['error'],
                         'sha256|cannot be decrypted')

    def test_missing_base_of_an_incremental_is_critical(self):
        full = self.backup()
        self.backup(base_art=full['artifacts'][0]['id'])
        os.unlink(full['artifacts'][0]['location'])
        report = self.check()
        self.assertEqual('CRITICAL', report['state'])
        (problem,) = report['items'][0]['problems']
        self.assertEqual(full['uuid'], problem['backup_uuid'])

    def test_rejected_record_is_critical(self):
        self.backup()
        self.backup(host='ctl2')
        self.flags(group='storage', deployment_id='elsewhere')
        report = self.check()
        self.assertEqual('CRITICAL', report['state'])
        self.assertEqual(2, len(report['rejected']))

    def test_cli_needs_no_catalogue(self):
        self.backup()

        class NoCatalogue:
            conf = self.cfg.conf

            @property
            def catalogue(self):
                raise AssertionError('the catalogue was opened')
        cmd = backups.BackupCommands(NoCatalogue())
        out = io.StringIO()
        with mock.patch('sys.stdout', out), \
                mock.patch('sys.stderr', io.StringIO()):
            self.assertEqual(0, cmd.check(dr=True, fmt='json'))
        self.assertEqual('OK', json.loads(out.getvalue())['state'])
        self.flags(group='storage', local_path='/nonexistent/osbackup')
        out = io.StringIO()
        with mock.patch('sys.stdout', out), \
                mock.patch('sys.stderr', io.StringIO()):
            self.assertEqual(3, cmd.check(dr=True))
        self.assertIn('OSBACKUP DR UNKNOWN', out.getvalue())


class EncryptedDrCheckTest(DrCheckTest):
    encrypt = True


class StorageSyncTest(StoredBackups):
    """``[conductor] storage_sync_interval``: vanished objects are missing."""

    def sync(self):
        return records_keeper.RecordKeeper(self.cfg.conf, self.old).sync()

    def test_vanished_artifact_is_marked_missing(self):
        kept = self.backup()
        gone = self.backup(host='ctl2')
        os.unlink(gone['artifacts'][0]['location'])
        self.assertEqual(1, self.sync())
        self.assertEqual(states.MISSING, self.old.get_backup(
            gone['id'])['artifacts'][0]['status'])
        self.assertEqual(states.AVAILABLE, self.old.get_backup(
            kept['id'])['artifacts'][0]['status'])
        self.assertEqual(0, self.sync())

    def test_a_target_without_records_is_not_judged(self):
        backup = self.backup()
        os.unlink(self.record_path(backup))
        os.unlink(backup['artifacts'][0]['location'])
        self.assertEqual(0, self.sync())
        self.assertEqual(states.AVAILABLE, self.old.get_backup(
            backup['id'])['artifacts'][0]['status'])

    def test_unreachable_target_is_not_judged(self):
        backup = self.backup()
        self.flags(group='storage', local_path='/nonexistent/osbackup')
        self.assertEqual(0, self.sync())
        self.assertEqual(states.AVAILABLE, self.old.get_backup(
            backup['id'])['artifacts'][0]['status'])

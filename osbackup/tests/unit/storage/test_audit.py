"""The storage audit: orphans, missing objects, leftovers, on local storage."""

import os
import time

from osbackup.storage import audit
from osbackup.storage import local
from osbackup.tests import base

UUID = '0f0e0d0c-0b0a-4908-8706-050403020100'
RUNNING_UUID = '11111111-2222-4333-8444-555555555555'


class AuditTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.state_dir, 'store')
        self.flags(group='storage', backend='local', local_path=self.path)
        self.storage = local.LocalStorage(self.cfg.conf)

    def put(self, key, data=b'x' * 10):
        with self.storage.open_writer(key) as writer:
            writer.write(data)
            return writer.commit()

    def backup(self, backup_id, locations, status='SUCCEEDED', uuid=None):
        return {'id': backup_id, 'uuid': uuid, 'status': status,
                'artifacts': [{'name': 'a%d' % n, 'host': 'ctl-1',
                               'status': 'AVAILABLE', 'location': loc,
                               'copies': [{'target': 'local',
                                           'location': loc}]}
                              for n, loc in enumerate(locations)]}

    def run_audit(self, backups):
        return audit.audit(self.cfg.conf, backups,
                           get_storage=lambda conf, t: self.storage)

    def test_orphans_missing_and_what_is_not_ours(self):
        kept = self.put('ctl-1/%s/nova/nova.tar.zst' % UUID)
        lost = self.put('ctl-1/7/mysql/all.sql.zst.enc')
        self.put('_records/%s.json' % UUID)        # disaster recovery's
        self.put('photos/cat.jpg')                  # another program's
        self.put('ctl-1/notes.txt')
        self.put('ctl-1/%s/nova/nova.tar.zst' % RUNNING_UUID)  # in flight
        gone = os.path.join(self.path, 'ctl-1/3/nova/nova.tar.zst')
        found = self.run_audit([
            self.backup(1, [kept, gone], uuid=UUID),
            self.backup(9, [], status='RUNNING', uuid=RUNNING_UUID)])
        self.assertEqual([lost], [o['location'] for o in found['orphans']])
        orphan = found['orphans'][0]
        self.assertEqual(('local', 10), (orphan['target'], orphan['size']))
        self.assertRegex(orphan['mtime'], r'^\d{4}-\d\d-\d\dT.*Z$')
        self.assertEqual([{'target': 'local', 'location': gone,
                           'backup_id': 1, 'artifact': 'a1',
                           'host': 'ctl-1'}], found['missing'])
        self.assertEqual([], found['errors'])

    def test_unlistable_target_is_an_error_not_an_empty_target(self):
        found = self.run_audit([self.backup(1, ['/nowhere/x'])])
        self.assertEqual(['local'], [e['target'] for e in found['errors']])
        self.assertEqual([], found['missing'])

    def test_delete_orphans_keeps_young_ones_and_foreign_names(self):
        old = self.put('ctl-1/7/mysql/all.sql.zst')
        young = self.put('ctl-1/8/mysql/all.sql.zst')
        past = time.time() - 3 * 86400
        os.utime(old, (past, past))
        orphans = self.run_audit([])['orphans']
        self.assertEqual({old, young}, {o['location'] for o in orphans})
        foreign = dict(orphans[0], location=os.path.join(self.path, 'x/y'))
        deleted = audit.delete_orphans(
            self.cfg.conf, orphans + [foreign], 86400,
            get_storage=lambda conf, t: self.storage)
        self.assertEqual([old], [o['location'] for o in deleted])
        self.assertFalse(os.path.exists(old))
        self.assertTrue(os.path.exists(young))

    def test_leftovers_removed_once_old(self):
        writer = self.storage.open_writer('ctl-1/7/nova/nova.tar.zst')
        writer.write(b'partial')
        writer.flush()
        partial = writer.partial_path

        def get(conf, target):
            return self.storage
        self.assertEqual([], audit.remove_leftovers(self.cfg.conf, 3600,
                                                    get_storage=get))
        past = time.time() - 7200
        os.utime(partial, (past, past))
        self.assertEqual([partial], audit.remove_leftovers(
            self.cfg.conf, 3600, get_storage=get))
        self.assertFalse(os.path.exists(partial))

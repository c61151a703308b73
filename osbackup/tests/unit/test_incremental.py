"""Incremental archives: unchanged files carried, chains restored exactly."""

import contextlib
import io
import json
import os
import shutil
import tarfile

import fixtures

from osbackup import archive
from osbackup import exception
from osbackup import streams
from osbackup.tests import base
from osbackup.tests.unit import test_archive

TOPS = ['/etc/nova', '/var/lib/nova']


class IncrementalTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(fixtures.TempDir()).path
        self.stage = self.useFixture(fixtures.TempDir()).path
        self.store = {}
        self.opened = []
        self.put('etc/nova/nova.conf', b'[DEFAULT]\ndebug = true\n')
        self.put('etc/nova/api-paste.ini', b'[pipeline]\n' * 100)
        self.put('var/lib/nova/state/keys', os.urandom(70000))
        self.put('var/lib/nova/state/old', b'to be deleted')
        os.symlink('keys', os.path.join(self.root, 'var/lib/nova/state/ln'))

    def put(self, rel, data):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data)

    def backup(self, ref, base_ref=None):
        base_manifest = self.store[base_ref][1] if base_ref else None
        sink = io.BytesIO()
        stats = archive.write_archive(sink, self.root, TOPS,
                                      base=base_manifest, base_ref=base_ref)
        self.store[ref] = (sink.getvalue(), stats.manifest)
        return stats

    @contextlib.contextmanager
    def open_base(self, ref):
        self.opened.append(ref)
        yield io.BytesIO(self.store[ref][0])

    def restore(self, ref, hash_files=True):
        shutil.rmtree(self.stage)
        os.mkdir(self.stage)
        targets = {t.lstrip('/'): os.path.join(self.stage, t.strip('/')
                                               .replace('/', '_'))
                   for t in TOPS}
        archive.extract_chain(io.BytesIO(self.store[ref][0]), targets,
                              self.open_base, hash_files=hash_files)
        return {t: test_archive._snapshot(d) for t, d in targets.items()}

    def snapshot(self):
        return {t.lstrip('/'): test_archive._snapshot(
            os.path.join(self.root, t.lstrip('/'))) for t in TOPS}

    def members(self, ref):
        source = streams.decompressor(io.BytesIO(self.store[ref][0]))
        with tarfile.open(fileobj=source, mode='r|') as tar:
            return [m.name for m in tar
                    if m.isreg() and m.name != archive.MANIFEST_NAME]

    def test_unchanged_tree_stores_no_file_data(self):
        full = self.backup('1')
        self.assertEqual(4, full.stored_files)
        inc = self.backup('2', '1')
        self.assertEqual(0, inc.stored_files)
        self.assertEqual(0, inc.stored_bytes)
        self.assertEqual(full.files, inc.files)
        self.assertEqual(full.bytes, inc.bytes)
        self.assertEqual([], self.members('2'))
        kept = [e for e in inc.manifest['entries'] if e['type'] == 'file']
        self.assertTrue(all(e['in'] == '1' for e in kept))
        self.assertEqual('1', inc.manifest['base'])

    def test_chain_restores_each_moment_exactly(self):
        self.backup('1')
        moment1 = self.snapshot()
        # Change one file (same size: mtime/ctime tell), delete one, add
        # one, and replace one by a new inode with the same content.
        path = os.path.join(self.root, 'etc/nova/nova.conf')
        with open(path, 'r+b') as f:
            f.write(b'[DEFAULT]\ndebug = fals\n')
        os.unlink(os.path.join(self.root, 'var/lib/nova/state/old'))
        self.put('var/lib/nova/state/new', b'new file')
        ini = os.path.join(self.root, 'etc/nova/api-paste.ini')
        shutil.copy2(ini, ini + '.tmp')
        os.rename(ini + '.tmp', ini)
        inc = self.backup('2', '1')
        moment2 = self.snapshot()
        self.assertEqual(
            sorted(['etc/nova/api-paste.ini', 'etc/nova/nova.conf',
                    'var/lib/nova/state/new']), sorted(self.members('2')))
        self.assertEqual(3, inc.stored_files)
        self.put('var/lib/nova/state/third', b'3')
        self.backup('3', '2')
        moment3 = self.snapshot()

        self.assertEqual(moment3, self.restore('3'))
        # The keys file was stored in backup 1 only: 3 reads it there.
        self.assertIn('1', self.opened)
        self.assertEqual(moment2, self.restore('2'))
        self.assertNotIn('state/old', self.restore('2')['var/lib/nova'])
        self.opened.clear()
        self.assertEqual(moment1, self.restore('1'))
        self.assertEqual([], self.opened)

    def test_references_point_at_the_backup_holding_the_bytes(self):
        self.backup('1')
        self.put('etc/nova/nova.conf', b'changed in 2')
        self.backup('2', '1')
        inc = self.backup('3', '2')
        refs = {e['path']: e['in'] for e in inc.manifest['entries']
                if 'in' in e}
        self.assertEqual('2', refs['etc/nova/nova.conf'])
        self.assertEqual('1', refs['var/lib/nova/state/keys'])
        self.restore('3')
        # Backup 2 is read for nova.conf, 1 for the rest; never 3's bases'
        # bases through 2.
        self.assertEqual(['1', '2'], self.opened)

    def test_base_that_lacks_the_file_is_refused(self):
        self.backup('1')
        self.backup('2', '1')
        # A different archive stored under backup 1's name.
        self.put('var/lib/nova/state/keys', b'other bytes')
        self.backup('1')
        for hash_files in (True, False):
            self.assertRaisesRegex(exception.ArtifactCorrupt,
                                   'does not hold', self.restore, '2',
                                   hash_files)

    def test_restore_without_hashing_files_gives_the_same_trees(self):
        self.backup('1')
        self.put('etc/nova/nova.conf', b'changed in 2')
        os.unlink(os.path.join(self.root, 'var/lib/nova/state/old'))
        self.backup('2', '1')
        moment2 = self.snapshot()
        self.put('var/lib/nova/state/third', b'3')
        self.backup('3', '2')
        self.assertEqual(self.snapshot(), self.restore('3', False))
        self.assertEqual(moment2, self.restore('2', False))
        self.assertEqual(['1', '2', '1'], self.opened)

    def test_entry_kept_elsewhere_must_not_be_a_member(self):
        self.backup('1')
        self.backup('2', '1')
        data, manifest = self.store['1']
        # Claim in backup 1's own manifest that a stored file is elsewhere.
        manifest = json.loads(json.dumps(manifest))
        for e in manifest['entries']:
            if e['type'] == 'file':
                e['in'] = '0'
        crafted = self._rewrite_manifest(data, manifest)
        self.assertRaisesRegex(exception.ArtifactCorrupt, 'not in its '
                               'manifest', archive.verify_archive,
                               io.BytesIO(crafted))

    def test_malformed_reference_is_refused(self):
        self.backup('1')
        data, manifest = self.store['1']
        manifest = json.loads(json.dumps(manifest))
        dirs = [e for e in manifest['entries'] if e['type'] == 'dir']
        dirs[0]['in'] = '0'
        crafted = self._rewrite_manifest(data, manifest)
        self.assertRaisesRegex(exception.ArtifactCorrupt, 'malformed',
                               archive.verify_archive, io.BytesIO(crafted))

    def test_full_backup_keeps_what_incrementals_compare(self):
        stats = self.backup('1')
        entry = next(e for e in stats.manifest['entries']
                     if e['path'] == 'etc/nova/nova.conf')
        st = os.lstat(os.path.join(self.root, 'etc/nova/nova.conf'))
        self.assertEqual((st.st_ino, st.st_mtime_ns, st.st_ctime_ns),
                         (entry['ino'], entry['mtime_ns'],
                          entry['ctime_ns']))
        self.assertNotIn('base', stats.manifest)

    def test_metadata_change_stores_the_file_again(self):
        self.backup('1')
        os.chmod(os.path.join(self.root, 'etc/nova/nova.conf'), 0o600)
        inc = self.backup('2', '1')
        self.assertEqual(['etc/nova/nova.conf'], self.members('2'))
        self.assertEqual(1, inc.stored_files)

    def test_chain_restores_outward_links(self):
        # Package-shipped links (Debian's swift: /etc/swift/backups ->
        # /var/backups/swift) in every backup of a chain.
        os.symlink('/var/backups/nova',
                   os.path.join(self.root, 'etc/nova/backups'))
        self.backup('1')
        self.put('etc/nova/nova.conf', b'changed in 2')
        os.symlink('../../../etc/nova',
                   os.path.join(self.root, 'var/lib/nova/state/etc'))
        self.backup('2', '1')
        restored = self.restore('2')
        self.assertEqual(self.snapshot(), restored)
        self.assertEqual('/var/backups/nova',
                         restored['etc/nova']['backups']['target'])
        self.assertEqual(['1'], self.opened)

    def test_kept_file_below_a_link_is_refused_before_reading_bases(self):
        self.backup('1')
        self.backup('2', '1')
        data, manifest = self.store['2']
        manifest = json.loads(json.dumps(manifest))
        # state/ln is a link in backup 2; a file kept in 1 "below" it
        # could only be written through it.
        kept = next(e for e in manifest['entries']
                    if e['path'] == 'var/lib/nova/state/keys')
        kept['path'] = 'var/lib/nova/state/ln/keys'
        self.store['2'] = (self._rewrite_manifest(data, manifest), manifest)
        exc = self.assertRaises(exception.UnsafeArchive, self.restore, '2')
        self.assertIn("parent 'var/lib/nova/state/ln' is a symlink",
                      exc.message)
        self.assertEqual([], self.opened)

    @staticmethod
    def _rewrite_manifest(data, manifest):
        """Re-pack an archive with another manifest member."""
        source = streams.decompressor(io.BytesIO(data))
        out = io.BytesIO()
        sink = streams.compressor(out)
        with tarfile.open(fileobj=source, mode='r|') as tar, \
                tarfile.open(fileobj=sink, mode='w|',
                             format=tarfile.PAX_FORMAT) as new:
            for member in tar:
                if member.name == archive.MANIFEST_NAME:
                    body = json.dumps(manifest).encode()
                    member.size = len(body)
                    new.addfile(member, io.BytesIO(body))
                else:
                    new.addfile(member, tar.extractfile(member)
                                if member.isreg() else None)
        sink.close()
        return out.getvalue()

"""Archives: faithful streaming backup, integrity checks, safe restore."""

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import types
from unittest import mock

import fixtures

from osbackup import archive
from osbackup.archive import extractor
from osbackup.archive import writer
from osbackup import exception
from osbackup import streams
from osbackup.tests import base

MTIME_NS = 1_600_000_000_123_456_789
BIG = os.urandom(64 * 1024) * 48 + b'tail'  # ~3 MiB, several chunks
TOPS = ['/etc/nova', '/var/lib/nova', '/var/log/nova']
EXCLUDES = ['/var/lib/nova/instances']


def _compress(data: bytes) -> io.BytesIO:
    out = io.BytesIO()
    writer = streams.compressor(out)
    writer.write(data)
    writer.close()
    out.seek(0)
    return out


def _item(path: str) -> dict:
    """Everything a restore must reproduce of one entry."""
    st = os.lstat(path)
    item = {'mode': st.st_mode, 'mtime': st.st_mtime_ns,
            'owner': (st.st_uid, st.st_gid)}
    if stat.S_ISLNK(st.st_mode):
        item['target'] = os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        with open(path, 'rb') as f:
            item['sha256'] = hashlib.sha256(f.read()).hexdigest()
    return item


def _snapshot(top: str) -> dict:
    """_item of everything in a tree, keyed by relative path."""
    tree = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in ['.'] + dirnames + filenames:
            path = os.path.normpath(os.path.join(dirpath, name))
            tree[os.path.relpath(path, top)] = _item(path)
    return tree


class ArchiveTestBase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(fixtures.TempDir()).path
        self.outside = self.useFixture(fixtures.TempDir()).path
        self.secret = os.path.join(self.outside, 'shadow')
        with open(self.secret, 'wb') as f:
            f.write(b'TOP-SECRET-SHADOW-CONTENT')

    def make_tree(self):
        def put(rel, data=b'', mode=0o644):
            path = os.path.join(self.root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'wb') as f:
                f.write(data)
            os.chmod(path, mode)
            return path

        put('etc/nova/nova.conf', b'[DEFAULT]\ndebug = true\n')
        put('etc/nova/secret.conf', b'password = x\n', 0o640)
        put('etc/nova/bin/helper', b'#!/bin/sh\n', 0o4755)
        put('etc/nova/policy.d/00-default.yaml', b'"rule": ""\n')
        put('etc/nova/big.bin', BIG)
        put(b'etc/nova/caf\xe9.conf'.decode('utf-8', 'surrogateescape'),
            b'latin-1 name\n')
        os.link(os.path.join(self.root, 'etc/nova/nova.conf'),
                os.path.join(self.root, 'etc/nova/hardlink.conf'))
        os.symlink(self.secret, os.path.join(self.root, 'etc/nova/shadow'))
        os.symlink('nova.conf', os.path.join(self.root, 'etc/nova/rel'))
        os.symlink('../nova.conf',
                   os.path.join(self.root, 'etc/nova/policy.d/up'))
        os.mkfifo(os.path.join(self.root, 'etc/nova/fifo'))
        put('var/lib/nova/state.json', b'{}')
        put('var/lib/nova/instances/uuid/disk', b'DISK' * 1000)
        put('var/log/nova/nova-compute.log', b'log line\n' * 100)
        if os.geteuid() == 0:
            os.chown(os.path.join(self.root, 'var/lib/nova/state.json'),
                     65534, 65534)
        for dirpath, dirnames, filenames in os.walk(self.root,
                                                    topdown=False):
            for name in filenames + dirnames + ['.']:
                os.utime(os.path.join(dirpath, name), follow_symlinks=False,
                         ns=(MTIME_NS, MTIME_NS))

    def write(self, paths=TOPS, excludes=EXCLUDES, **kw):
        out = io.BytesIO()
        stats = archive.write_archive(out, self.root, paths, excludes, **kw)
        out.seek(0)
        return out, stats

    def staging(self, *prefixes):
        base_dir = self.useFixture(fixtures.TempDir()).path
        return base_dir, {p: os.path.join(base_dir, p.replace('/', '_'))
                          for p in prefixes}


class WriteArchiveTest(ArchiveTestBase):

    def test_manifest_and_stats(self):
        self.make_tree()
        _, stats = self.write(paths=TOPS + ['/missing'])
        manifest = stats.manifest
        self.assertEqual(['etc/nova', 'var/lib/nova', 'var/log/nova'],
                         manifest['paths'])
        self.assertEqual(['var/lib/nova/instances'], manifest['excludes'])
        # The absolute link to the secret is stored as a link and restores
        # as one: nothing to warn about.
        self.assertEqual(['etc/nova/fifo: FIFO skipped'], stats.warnings)
        entries = {e['path']: e for e in manifest['entries']}
        self.assertNotIn('etc/nova/fifo', entries)
        self.assertFalse([p for p in entries if 'instances' in p])
        conf = entries['etc/nova/nova.conf']
        self.assertEqual('file', conf['type'])
        self.assertEqual(hashlib.sha256(b'[DEFAULT]\ndebug = true\n')
                         .hexdigest(), conf['sha256'])
        # Hard links become independent files.
        self.assertEqual({k: v for k, v in conf.items() if k != 'path'},
                         {k: v for k, v in entries['etc/nova/hardlink.conf']
                          .items() if k != 'path'})
        self.assertEqual(0o640, entries['etc/nova/secret.conf']['mode'])
        self.assertEqual(0o4755, entries['etc/nova/bin/helper']['mode'])
        self.assertEqual(len(BIG), entries['etc/nova/big.bin']['size'])
        self.assertEqual({'type': 'symlink', 'target': self.secret},
                         {k: entries['etc/nova/shadow'][k]
                          for k in ('type', 'target')})
        self.assertEqual('../nova.conf',
                         entries['etc/nova/policy.d/up']['target'])
        self.assertEqual('dir', entries['var/lib/nova']['type'])
        self.assertAlmostEqual(MTIME_NS / 1e9, conf['mtime'], places=5)
        files = [e for e in entries.values() if e['type'] == 'file']
        self.assertEqual(len(files), stats.files)
        self.assertEqual(sum(e['size'] for e in files), stats.bytes)
        # Parents always precede their children.
        names = [e['path'] for e in manifest['entries']]
        for i, name in enumerate(names):
            parent = os.path.dirname(name)
            if parent in entries:
                self.assertLess(names.index(parent), i)

    def test_readable_by_gnu_tar(self):
        if not (shutil.which('tar') and shutil.which('zstd')):
            self.skipTest('GNU tar or zstd missing')
        self.make_tree()
        out, _ = self.write()
        path = os.path.join(self.outside, 'a.tar.zst')
        with open(path, 'wb') as f:
            f.write(out.getvalue())
        listing = subprocess.run(['tar', '--zstd', '-tvf', path],
                                 check=True, capture_output=True).stdout
        self.assertIn(b'etc/nova/shadow -> ' + self.secret.encode(), listing)
        self.assertIn(b'etc/nova/policy.d/00-default.yaml', listing)
        self.assertIn(archive.MANIFEST_NAME.encode(), listing)
        self.assertNotIn(b'instances', listing)
        self.assertNotIn(b'fifo', listing)
        # GNU tar restores the same bytes and nanosecond mtimes.
        dest = os.path.join(self.outside, 'gnu')
        os.mkdir(dest)
        subprocess.run(['tar', '--zstd', '-xpf', path, '-C', dest],
                       check=True, capture_output=True)
        self.assertEqual(_snapshot(os.path.join(self.root, 'var/log/nova')),
                         _snapshot(os.path.join(dest, 'var/log/nova')))
        self.assertEqual(BIG, open(os.path.join(dest, 'etc/nova/big.bin'),
                                   'rb').read())

    def test_readable_by_tarfile(self):
        self.make_tree()
        out, _ = self.write()
        tar = tarfile.open(fileobj=streams.decompressor(out), mode='r|')
        members = {m.name: m for m in tar}
        self.assertTrue(members['etc/nova/hardlink.conf'].isreg())
        self.assertTrue(members['etc/nova/shadow'].issym())
        self.assertEqual(MTIME_NS / 1e9,
                         members['etc/nova/nova.conf'].mtime)
        self.assertEqual(archive.MANIFEST_NAME, list(members)[-1])

    def test_symlink_is_never_dereferenced(self):
        self.make_tree()
        out, stats = self.write()
        raw = streams.decompressor(out).read()
        self.assertNotIn(b'TOP-SECRET', raw)
        self.assertIn(self.secret.encode(), raw)

    def test_nested_and_excluded_tops(self):
        self.make_tree()
        _, stats = self.write(paths=['/etc/nova/policy.d', '/etc/nova',
                                     '/var/lib/nova/instances'])
        self.assertEqual(['etc/nova'], stats.manifest['paths'])
        names = [e['path'] for e in stats.manifest['entries']]
        self.assertEqual(len(names), len(set(names)))

    def test_relative_paths_rejected(self):
        self.assertRaises(exception.InvalidInput, self.write,
                          paths=['etc/nova'])
        self.assertRaises(exception.InvalidInput, self.write,
                          paths=['/etc/nova'], excludes=['x'])
        self.assertRaises(exception.InvalidInput, self.write, paths=['/'])

    def test_symlinked_top_is_skipped(self):
        self.make_tree()
        os.symlink('nova', os.path.join(self.root, 'etc/alias'))
        _, stats = self.write(paths=['/etc/alias'])
        self.assertEqual([], stats.manifest['paths'])
        self.assertEqual(1, len(stats.warnings))
        self.assertTrue(stats.warnings[0].startswith(
            'etc/alias: symlink skipped: a top path must be a directory'))

    def test_link_a_restore_would_refuse_is_skipped_with_a_warning(self):
        # readlink cannot return '' on Linux, but a FUSE filesystem may:
        # what the restore rule refuses is never stored.
        self.make_tree()
        real = os.readlink
        with mock.patch.object(writer.os, 'readlink', side_effect=lambda p: (
                '' if p.endswith('/rel') else real(p))):
            out, stats = self.write(paths=['/etc/nova'])
        self.assertIn('etc/nova/rel: empty symlink skipped: a restore would '
                      'refuse it', stats.warnings)
        self.assertNotIn('etc/nova/rel',
                         [e['path'] for e in stats.manifest['entries']])
        archive.verify_archive(out)

    def test_backup_the_restore_would_refuse_fails(self):
        # The writer's own checks make this unreachable; the final check
        # of the manifest against the restore's rule still guards it.
        self.make_tree()
        real = writer._Writer.add_tree

        def add_tree(writer, *args):
            real(writer, *args)
            writer.entries.append({'path': 'etc/nova/rel/x', 'type': 'dir'})
        sink = io.BytesIO()
        with mock.patch.object(writer._Writer, 'add_tree', add_tree):
            exc = self.assertRaises(exception.UnsafeArchive,
                                    archive.write_archive, sink, self.root,
                                    ['/etc/nova'])
        self.assertEqual("the backup would not restore: unsafe archive "
                         "member 'etc/nova/rel/x': parent 'etc/nova/rel' is "
                         "a symlink", exc.message)
        # The stream is left unfinished: no storage commits it.
        self.assertRaises(exception.ArtifactCorrupt, archive.verify_archive,
                          io.BytesIO(sink.getvalue()))

    def test_file_growing_or_shrinking_while_read(self):
        self.make_tree()
        big = os.path.join(self.root, 'etc/nova/big.bin')
        ino = os.stat(big).st_ino
        real_fstat = os.fstat
        calls = []

        def fstat(fd):
            st = real_fstat(fd)
            if st.st_ino != ino or calls:
                return st
            calls.append(fd)
            return types.SimpleNamespace(
                st_mode=st.st_mode, st_uid=st.st_uid, st_gid=st.st_gid,
                st_mtime_ns=st.st_mtime_ns, st_size=st.st_size + delta,
                st_ino=st.st_ino, st_ctime_ns=st.st_ctime_ns)

        for delta, stored in ((1000, BIG + bytes(1000)),
                              (-1000, BIG[:-1000])):
            calls.clear()
            with mock.patch('os.fstat', side_effect=fstat):
                out, stats = self.write(paths=['/etc/nova'])
            self.assertEqual(['etc/nova/big.bin: changed while being read',
                              'etc/nova/fifo: FIFO skipped'],
                             sorted(stats.warnings)[:2])
            entry = [e for e in stats.manifest['entries']
                     if e['path'] == 'etc/nova/big.bin'][0]
            self.assertEqual(len(stored), entry['size'])
            self.assertEqual(hashlib.sha256(stored).hexdigest(),
                             entry['sha256'])
            archive.verify_archive(out)

    def test_mtime_change_while_read_warns(self):
        self.make_tree()
        log = os.path.join(self.root, 'var/log/nova/nova-compute.log')
        real_readv = os.readv

        def readv(fd, buffers):
            os.utime(log, ns=(1, 1))
            return real_readv(fd, buffers)

        with mock.patch('os.readv', side_effect=readv):
            _, stats = self.write(paths=['/var/log/nova'])
        self.assertEqual(['var/log/nova/nova-compute.log: changed while '
                          'being read'], stats.warnings)

    def test_vanished_file_is_a_warning(self):
        self.make_tree()
        gone = os.path.join(self.root, 'var/log/nova/nova-compute.log')
        real_open = os.open

        def fake_open(path, *args, **kw):
            if path == gone:
                raise FileNotFoundError(2, 'gone')
            return real_open(path, *args, **kw)

        with mock.patch('os.open', side_effect=fake_open):
            _, stats = self.write(paths=['/var/log/nova'])
        self.assertEqual(['var/log/nova/nova-compute.log: vanished before '
                          'it was read'], stats.warnings)
        self.assertEqual(0, stats.files)

    def test_other_filesystem_is_skipped(self):
        self.make_tree()
        top = os.path.join(self.root, 'etc/nova')
        real_lstat = os.lstat

        def lstat(path, *args, **kw):
            st = real_lstat(path, *args, **kw)
            if path != top:
                return st
            return types.SimpleNamespace(
                **{k: getattr(st, k) for k in dir(st) if k.startswith('st_')
                   and k != 'st_dev'}, st_dev=st.st_dev + 1)

        with mock.patch('os.lstat', side_effect=lstat):
            _, stats = self.write(paths=['/etc/nova'])
        self.assertIn('etc/nova/policy.d: on another filesystem; skipped',
                      stats.warnings)
        names = [e['path'] for e in stats.manifest['entries']]
        self.assertNotIn('etc/nova/policy.d/00-default.yaml', names)
        self.assertIn('etc/nova/nova.conf', names)

    def test_progress_is_batched_and_complete(self):
        self.make_tree()
        calls = []
        _, stats = self.write(progress=lambda b, f: calls.append((b, f)))
        self.assertEqual(stats.bytes, sum(b for b, f in calls))
        self.assertEqual(stats.files, sum(f for b, f in calls))
        self.assertLessEqual(len(calls), stats.bytes // archive.CHUNK + 1)

    def test_sink_errors_propagate(self):
        self.make_tree()

        class Full:
            def write(self, data):
                raise OSError(28, 'No space left on device')

        self.assertRaises(OSError, archive.write_archive, Full(), self.root,
                          TOPS, level=1)


class VerifyArchiveTest(ArchiveTestBase):

    def setUp(self):
        super().setUp()
        self.make_tree()
        out, self.stats = self.write()
        self.data = out.getvalue()

    def test_intact_archive_verifies(self):
        self.assertEqual(self.stats.manifest,
                         archive.verify_archive(io.BytesIO(self.data)))

    def test_flipped_byte_is_corrupt(self):
        for pos in (len(self.data) // 5, len(self.data) // 2,
                    len(self.data) * 9 // 10, len(self.data) - 3):
            bad = bytearray(self.data)
            bad[pos] ^= 0x10
            self.assertRaises(exception.ArtifactCorrupt,
                              archive.verify_archive, io.BytesIO(bad))

    def test_truncated_archive_is_corrupt(self):
        for size in (0, 100, len(self.data) // 2, len(self.data) - 200):
            self.assertRaises(exception.ArtifactCorrupt,
                              archive.verify_archive,
                              io.BytesIO(self.data[:size]))

    def test_tar_stream_cut_after_manifest_is_corrupt(self):
        raw = streams.decompressor(io.BytesIO(self.data)).read()
        end = len(raw.rstrip(b'\0'))
        end += -end % tarfile.BLOCKSIZE
        exc = self.assertRaises(exception.ArtifactCorrupt,
                                archive.verify_archive, _compress(raw[:end]))
        self.assertIn('truncated', exc.message)
        archive.verify_archive(_compress(raw[:end + 2 * 512]))

    def test_not_an_archive(self):
        self.assertRaises(exception.ArtifactCorrupt, archive.verify_archive,
                          io.BytesIO(b'plain text, not zstd'))
        self.assertRaises(exception.ArtifactCorrupt, archive.verify_archive,
                          _compress(b'plain text, not tar'))

    def _rebuild(self, drop=(), change=None, extra=None, manifest=True):
        """Re-pack the archive with tarfile, tampering on the way."""
        src = tarfile.open(fileobj=streams.decompressor(
            io.BytesIO(self.data)), mode='r|')
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode='w',
                          format=tarfile.PAX_FORMAT) as dst:
            for member in src:
                data = src.extractfile(member).read() if member.isreg() \
                    else None
                if member.name in drop or (
                        member.name == archive.MANIFEST_NAME and
                        not manifest):
                    continue
                if member.name == change:
                    data = data.replace(b'debug', b'DEBUG')
                if member.name == archive.MANIFEST_NAME and extra:
                    dst.addfile(tarfile.TarInfo(extra), io.BytesIO())
                dst.addfile(member, io.BytesIO(data) if data else None)
        return _compress(raw.getvalue())

    def test_rebuilt_archive_verifies(self):
        archive.verify_archive(self._rebuild())

    def test_tampered_content_is_corrupt(self):
        exc = self.assertRaises(exception.ArtifactCorrupt,
                                archive.verify_archive,
                                self._rebuild(change='etc/nova/nova.conf'))
        self.assertIn("'etc/nova/nova.conf': sha256", exc.message)

    def test_missing_member_is_corrupt(self):
        exc = self.assertRaises(exception.ArtifactCorrupt,
                                archive.verify_archive,
                                self._rebuild(drop=['etc/nova/rel']))
        self.assertIn("lacks member 'etc/nova/rel'", exc.message)

    def test_unexpected_member_is_corrupt(self):
        exc = self.assertRaises(exception.ArtifactCorrupt,
                                archive.verify_archive,
                                self._rebuild(extra='etc/nova/planted'))
        self.assertIn("'etc/nova/planted' is not in its manifest",
                      exc.message)

    def test_missing_manifest_is_corrupt(self):
        exc = self.assertRaises(exception.ArtifactCorrupt,
                                archive.verify_archive,
                                self._rebuild(manifest=False))
        self.assertIn('no manifest', exc.message)


class ExtractArchiveTest(ArchiveTestBase):

    def test_round_trip(self):
        self.make_tree()
        out, stats = self.write()
        self.assertEqual(stats.manifest, archive.verify_archive(out))
        out.seek(0)
        _, targets = self.staging('etc/nova', 'var/lib/nova', 'var/log/nova')
        os.mkdir(targets['var/log/nova'])  # pre-created staging is fine
        self.assertEqual(stats.manifest,
                         archive.extract_archive(out, targets))
        for prefix, staging in targets.items():
            expected = _snapshot(os.path.join(self.root, prefix))
            for rel in ('fifo', 'instances', 'instances/uuid',
                        'instances/uuid/disk'):
                expected.pop(rel, None)
            self.assertEqual(expected, _snapshot(staging))
        self.assertFalse(os.path.exists(
            os.path.join(targets['var/lib/nova'], 'instances')))
        self.assertEqual(0o4755, stat.S_IMODE(os.stat(os.path.join(
            targets['etc/nova'], 'bin/helper')).st_mode))
        self.assertEqual('../nova.conf', os.readlink(os.path.join(
            targets['etc/nova'], 'policy.d/up')))
        self.assertEqual(self.secret, os.readlink(os.path.join(
            targets['etc/nova'], 'shadow')))
        self.assertEqual(1, os.stat(os.path.join(
            targets['etc/nova'], 'hardlink.conf')).st_nlink)
        if os.geteuid() == 0:
            self.assertEqual(65534, os.stat(os.path.join(
                targets['var/lib/nova'], 'state.json')).st_uid)

    def test_more_directories_than_are_held_open(self):
        # Directories are reached through a bounded set of open fds: files
        # after a subtree, links made at the end and directories sealed
        # deepest first all go back to ones closed meanwhile.
        top = os.path.join(self.root, 'etc/nova')
        deep = os.path.join(top, 'deep', *['d'] * (extractor._OPEN_DIRS + 10))
        os.makedirs(deep)
        with open(os.path.join(deep, 'bottom'), 'wb') as f:
            f.write(b'bottom\n')
        for i in range(extractor._OPEN_DIRS + 10):
            d = os.path.join(top, 'w%03d' % i)
            os.makedirs(os.path.join(d, 'sub'))
            for name in ('sub/f', 'z'):
                with open(os.path.join(d, name), 'wb') as f:
                    f.write(name.encode())
            os.symlink('../w%03d/z' % (i + 1), os.path.join(d, 'l'))
            os.chmod(d, 0o750)
            os.utime(d, ns=(MTIME_NS, MTIME_NS))
        os.utime(top, ns=(MTIME_NS, MTIME_NS))
        out, _ = self.write(paths=['/etc/nova'])
        _, targets = self.staging('etc/nova')
        archive.extract_archive(out, targets)
        self.assertEqual(_snapshot(top), _snapshot(targets['etc/nova']))

    def test_partial_restore(self):
        self.make_tree()
        out, _ = self.write(excludes=EXCLUDES + ['/etc/nova/shadow'])
        base_dir, targets = self.staging('var/log/nova')
        archive.extract_archive(out, targets)
        self.assertEqual(['var_log_nova'], os.listdir(base_dir))
        self.assertEqual(['nova-compute.log'],
                         os.listdir(targets['var/log/nova']))

    def test_single_file_top_and_empty_archive(self):
        self.make_tree()
        out, stats = self.write(paths=['/etc/nova/nova.conf'])
        self.assertEqual(['etc/nova/nova.conf'], stats.manifest['paths'])
        _, targets = self.staging('etc/nova/nova.conf')
        archive.extract_archive(out, targets)
        self.assertEqual(_item(os.path.join(self.root, 'etc/nova/nova.conf')),
                         _item(targets['etc/nova/nova.conf']))
        out, stats = self.write(paths=['/missing'])
        self.assertEqual([], archive.verify_archive(out)['entries'])

    def test_package_links_restore_as_links(self):
        # Debian's swift ships /etc/swift/backups -> /var/backups/swift:
        # absolute, leaving the tree, dangling on a node without it.
        self.make_tree()
        os.symlink('/var/backups/nova',
                   os.path.join(self.root, 'etc/nova/backups'))
        os.symlink('../../usr/share/nova',
                   os.path.join(self.root, 'etc/nova/share'))
        out, stats = self.write(paths=['/etc/nova'])
        self.assertEqual(['etc/nova/fifo: FIFO skipped'], stats.warnings)
        archive.verify_archive(out)
        out.seek(0)
        _, targets = self.staging('etc/nova')
        archive.extract_archive(out, targets)
        staged = targets['etc/nova']
        for name, target in (('shadow', self.secret),
                             ('backups', '/var/backups/nova'),
                             ('share', '../../usr/share/nova')):
            self.assertEqual(target, os.readlink(os.path.join(staged, name)))
        self.assertEqual(_snapshot(os.path.join(self.root, 'etc/nova'))
                         .keys() - {'fifo'}, _snapshot(staged).keys())
        with open(self.secret, 'rb') as f:
            self.assertEqual(b'TOP-SECRET-SHADOW-CONTENT', f.read())

    def test_file_not_written_through_a_link_planted_in_staging(self):
        # Someone swaps a staged directory for a link to elsewhere while
        # the restore writes into it: the rest of its files still land in
        # the directory, never through the link.
        self.make_tree()
        with open(os.path.join(self.root, 'etc/nova/policy.d/01-more.yaml'),
                  'wb') as f:
            f.write(b'more\n')
        out, _ = self.write(paths=['/etc/nova'])
        _, targets = self.staging('etc/nova')
        policy = os.path.join(targets['etc/nova'], 'policy.d')
        real = extractor._Extractor._apply
        planted = []

        def apply(extractor, target, member, *args, **kwargs):
            real(extractor, target, member, *args, **kwargs)
            if not planted and os.path.isdir(policy):
                os.rename(policy, policy + '.moved')
                os.symlink(self.outside, policy)
                planted.append(member.name)
        with mock.patch.object(extractor._Extractor, '_apply', apply):
            archive.extract_archive(out, targets)
        self.assertEqual(['etc/nova/policy.d/00-default.yaml'], planted)
        self.assertEqual(['shadow'], os.listdir(self.outside))
        self.assertEqual(['00-default.yaml', '01-more.yaml', 'up'],
                         sorted(os.listdir(policy + '.moved')))

    def test_corrupt_archive_is_refused(self):
        self.make_tree()
        out, _ = self.write(excludes=EXCLUDES + ['/etc/nova/shadow'])
        bad = bytearray(out.getvalue())
        bad[len(bad) // 2] ^= 0x01
        _, targets = self.staging('etc/nova')
        self.assertRaises(exception.ArtifactCorrupt, archive.extract_archive,
                          io.BytesIO(bad), targets)

    def test_bad_targets(self):
        for targets in ({'/etc/nova': '/tmp/x'}, {'etc/nova': 'rel'},
                        {'etc/../x': '/tmp/x'},
                        {'etc': '/tmp/a', 'etc/nova': '/tmp/b'}):
            self.assertRaises(exception.InvalidInput,
                              archive.extract_archive, io.BytesIO(), targets)


class MaliciousArchiveTest(ArchiveTestBase):
    """Hand-made archives with a plausible manifest must write nothing."""

    def evil(self, *members, top=True):
        raw = io.BytesIO()
        entries = []
        if top:
            members = (('etc/nova', tarfile.DIRTYPE, ''),) + members
        with tarfile.open(fileobj=raw, mode='w',
                          format=tarfile.PAX_FORMAT) as tar:
            for name, kind, link in members:
                info = tarfile.TarInfo(name)
                info.type, info.linkname = kind, link
                data = b'pwned\n' if kind == tarfile.REGTYPE else b''
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                entry = {'path': name, 'type': 'file', 'size': len(data),
                         'sha256': hashlib.sha256(data).hexdigest()}
                if kind == tarfile.SYMTYPE:
                    entry = {'path': name, 'type': 'symlink', 'target': link}
                elif kind == tarfile.DIRTYPE:
                    entry = {'path': name, 'type': 'dir'}
                entries.append(entry)
            data = json.dumps({'format': 1, 'paths': ['etc/nova'],
                               'excludes': [], 'entries': entries}).encode()
            info = tarfile.TarInfo(archive.MANIFEST_NAME)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        return _compress(raw.getvalue())

    def assertRefused(self, *members, written=(), top=True):
        base_dir, targets = self.staging('etc/nova')
        source = self.evil(*members, top=top)
        exc = self.assertRaises(exception.UnsafeArchive,
                                archive.extract_archive, source, targets)
        self.assertIn(repr(exc.details['member']), exc.message)
        self.assertEqual(['etc_nova'] if top else [], os.listdir(base_dir))
        self.assertEqual(['shadow'], os.listdir(self.outside))
        found = []
        for dirpath, dirnames, filenames in os.walk(targets['etc/nova']):
            found += [os.path.relpath(os.path.join(dirpath, n),
                                      targets['etc/nova'])
                      for n in dirnames + filenames]
        self.assertEqual(sorted(written), sorted(found))
        return exc

    def test_control_archive_extracts(self):
        base_dir, targets = self.staging('etc/nova')
        archive.extract_archive(self.evil(
            ('etc/nova/sub', tarfile.DIRTYPE, ''),
            ('etc/nova/sub/a', tarfile.REGTYPE, ''),
            ('etc/nova/l', tarfile.SYMTYPE, 'sub/../sub/a')), targets)
        with open(os.path.join(targets['etc/nova'], 'l')) as f:
            self.assertEqual('pwned\n', f.read())

    def test_dotdot(self):
        self.assertRefused(('../x', tarfile.REGTYPE, ''))
        self.assertRefused(('etc/nova/../../x', tarfile.REGTYPE, ''))

    def test_absolute_name(self):
        self.assertRefused((self.outside + '/x', tarfile.REGTYPE, ''))

    def test_outside_archived_paths(self):
        exc = self.assertRefused(('etc/passwd', tarfile.REGTYPE, ''))
        self.assertIn('outside the archived paths', exc.message)

    def test_hard_link(self):
        # A hard link to a file outside would make the restore share (and
        # later rewrite) that file.  osbackup stores hard links as files,
        # so one to a member inside is refused as well.
        self.assertRefused(('etc/nova/h', tarfile.LNKTYPE, self.secret))
        exc = self.assertRefused(('etc/nova/a', tarfile.REGTYPE, ''),
                                 ('etc/nova/h', tarfile.LNKTYPE, 'etc/nova/a'),
                                 written=['a'])
        self.assertIn("'etc/nova/h': hard link", exc.message)

    def test_devices_and_fifos(self):
        for kind in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE,
                     tarfile.CONTTYPE):
            self.assertRefused(('etc/nova/dev', kind, ''))

    def assertLinksRestored(self, *members):
        """Extract; each link is a link as archived, nothing written out."""
        _, targets = self.staging('etc/nova')
        archive.extract_archive(self.evil(*members), targets)
        for name, kind, link in members:
            if kind == tarfile.SYMTYPE:
                self.assertEqual(link, os.readlink(os.path.join(
                    targets['etc/nova'], name[len('etc/nova/'):])))
        self.assertEqual(['shadow'], os.listdir(self.outside))
        with open(self.secret, 'rb') as f:
            self.assertEqual(b'TOP-SECRET-SHADOW-CONTENT', f.read())

    def test_outward_links_are_restored_as_links(self):
        self.assertLinksRestored(
            ('etc/nova/abs', tarfile.SYMTYPE, self.secret),
            ('etc/nova/up', tarfile.SYMTYPE, '../../etc'),
            ('etc/nova/dangling', tarfile.SYMTYPE, '/var/backups/nova'),
            ('etc/nova/sub', tarfile.DIRTYPE, ''),
            ('etc/nova/sub/far', tarfile.SYMTYPE, '../../../../../x'),
            ('etc/nova/sub/z', tarfile.REGTYPE, ''))

    def test_symlink_as_top(self):
        self.assertRefused(('etc/nova', tarfile.SYMTYPE, 'nova'), top=False)

    def test_member_below_a_link_is_refused(self):
        for link in ('../..', self.outside, 'sub'):
            # The link may be harmless itself; a member below it could
            # only be written through it.  Links are made last, so a
            # refused archive leaves none behind.
            exc = self.assertRefused(
                ('etc/nova/sub', tarfile.DIRTYPE, ''),
                ('etc/nova/x', tarfile.SYMTYPE, link),
                ('etc/nova/x/passwd', tarfile.REGTYPE, ''),
                written=['sub'])
            self.assertEqual("unsafe archive member 'etc/nova/x/passwd': "
                             "parent 'etc/nova/x' is a symlink", exc.message)
        exc = self.assertRefused(
            ('etc/nova/x', tarfile.SYMTYPE, self.outside),
            ('etc/nova/x/d', tarfile.DIRTYPE, ''))
        self.assertIn("parent 'etc/nova/x' is a symlink", exc.message)

    def test_chained_symlinks_are_restored_as_links(self):
        # Lexically 's/d/../..' stays inside; through the link 's/d -> ..'
        # it resolves two levels above the tree.  Neither is followed.
        self.assertLinksRestored(
            ('etc/nova/s', tarfile.DIRTYPE, ''),
            ('etc/nova/s/d', tarfile.SYMTYPE, '..'),
            ('etc/nova/l', tarfile.SYMTYPE, 's/d/../..'))

    def test_hostile_archive_fails_verification(self):
        # verify applies the restore's rule: it no longer says OK about
        # an archive the restore would refuse.
        for members in ((('etc/nova/x', tarfile.SYMTYPE, '/'),
                         ('etc/nova/x/passwd', tarfile.REGTYPE, '')),
                        (('etc/nova/../x', tarfile.REGTYPE, ''),),
                        (('etc/nova/h', tarfile.LNKTYPE, self.secret),),
                        (('etc/nova/f', tarfile.FIFOTYPE, ''),)):
            self.assertRaises(exception.UnsafeArchive,
                              archive.verify_archive, self.evil(*members))

    def test_link_then_file_of_same_name(self):
        self.assertRaises(exception.OsbackupError, archive.extract_archive,
                          self.evil(('etc/nova/x', tarfile.SYMTYPE, 'y'),
                                    ('etc/nova/x', tarfile.REGTYPE, '')),
                          self.staging('etc/nova')[1])

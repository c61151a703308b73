"""The archive reader's own tar parser and its helper thread.

The reader parses tar itself (tarfile in stream mode was the restore's
largest cost); these tests hold it to tarfile's reading of well-formed
archives and check that malformed or hostile ones are refused, with
nothing written outside the staging directories.
"""

import hashlib
import io
import json
import os
import shutil
import tarfile
import threading

import fixtures

from osbackup import archive
from osbackup.archive import reader
from osbackup.archive import writer
from osbackup import exception
from osbackup import streams
from osbackup.tests import base
from osbackup.tests.unit import test_archive

_compress = test_archive._compress
FIELDS = ('name', 'type', 'mode', 'uid', 'gid', 'size', 'mtime', 'linkname',
          'uname', 'gname')


def _info(name, kind=tarfile.REGTYPE, data=b'', **attrs):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data)
    info.mtime = 1_600_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def _entry(info, data):
    if info.type == tarfile.DIRTYPE:
        return {'path': info.name, 'type': 'dir'}
    if info.type == tarfile.SYMTYPE:
        return {'path': info.name, 'type': 'symlink', 'target': info.linkname}
    return {'path': info.name, 'type': 'file', 'size': len(data),
            'sha256': hashlib.sha256(data).hexdigest()}


def _block(data: bytes) -> bytes:
    return data + bytes(-len(data) % tarfile.BLOCKSIZE)


def _header(info, fmt=tarfile.PAX_FORMAT) -> bytes:
    return info.tobuf(fmt, 'utf-8', 'surrogateescape')


def _raw_member(header: bytes, data: bytes = b'') -> bytes:
    """A hand-made member: a header (any bytes) and its padded data."""
    return _block(header) + _block(data)


def _ustar(name: bytes, kind: bytes = b'0', size: bytes = b'0',
           mode: bytes = b'0000644', prefix: bytes = b'',
           fix_checksum: bool = True) -> bytes:
    """A ustar header with any field values, checksummed unless asked."""
    buf = bytearray(tarfile.BLOCKSIZE)
    buf[0:len(name)] = name
    buf[100:100 + len(mode)] = mode
    buf[108:115] = b'0000000'
    buf[116:123] = b'0000000'
    buf[124:124 + len(size)] = size
    buf[136:147] = b'13521611400'
    buf[148:156] = b' ' * 8
    buf[156:157] = kind
    buf[257:265] = b'ustar\x0000'
    buf[345:345 + len(prefix)] = prefix
    if fix_checksum:
        buf[148:156] = b'%06o\0 ' % sum(buf)
    return bytes(buf)


def _rec(key: str, value: bytes) -> bytes:
    return writer._pax_record(key, value)


def _pax(records: bytes) -> bytes:
    """A pax extended header carrying ``records`` verbatim."""
    return _raw_member(_ustar(b'././@PaxHeader', b'x',
                              b'%011o' % len(records)), records)


def _manifest(entries, paths=('etc/nova',)) -> bytes:
    data = json.dumps({'format': 1, 'paths': list(paths), 'excludes': [],
                       'entries': entries}).encode()
    info, _ = _info(archive.MANIFEST_NAME, data=data)
    return _header(info) + _block(data)


def _end() -> bytes:
    return bytes(2 * tarfile.BLOCKSIZE)


def _archive(members, fmt=tarfile.PAX_FORMAT, entries=None,
             paths=('etc/nova',)) -> bytes:
    """Raw tar of (TarInfo, data) pairs plus a manifest that lists them."""
    raw = b''.join(_header(i, fmt) + _block(d) for i, d in members)
    if entries is None:
        entries = [_entry(i, d) for i, d in members]
    return raw + _manifest(entries, paths) + _end()


def _parsed(raw: bytes):
    """(member attributes, sha256 of data or None) as the reader sees them."""
    out, last = [], None
    for batch in reader._TarStream(_compress(raw)).batches():
        for event in batch:
            if isinstance(event, str):
                last[1] = event
            elif isinstance(event, memoryview) or event is None:
                continue
            else:
                last = [{f: getattr(event, f) for f in FIELDS}, None]
                out.append(last)
    return out


def _by_tarfile(raw: bytes):
    out = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode='r|',
                      encoding='utf-8', errors='surrogateescape') as tar:
        for info in tar:
            digest = None
            if info.isreg():
                digest = hashlib.sha256(
                    tar.extractfile(info).read()).hexdigest()
            out.append([{f: getattr(info, f) for f in FIELDS}, digest])
    return out


class ParserMatchesTarfileTest(base.TestCase):
    """Well-formed archives read exactly as tarfile reads them."""

    def members(self, fmt):
        long_dir = 'etc/nova/' + 'd' * 60 + '/' + 'e' * 60
        members = [
            _info('etc/nova', tarfile.DIRTYPE, mode=0o750),
            _info('etc/nova/nova.conf', data=b'[DEFAULT]\n', mode=0o640,
                  uid=0, gid=42, uname='root', gname='nova'),
            _info('etc/nova/empty'),
            _info('etc/nova/big', data=os.urandom(3 << 20)),
            _info(long_dir.rsplit('/', 1)[0], tarfile.DIRTYPE),
            _info(long_dir, tarfile.DIRTYPE),
            _info(long_dir + '/f', data=b'deep\n'),
            _info('etc/nova/rel', tarfile.SYMTYPE, linkname='nova.conf'),
        ]
        if fmt != tarfile.USTAR_FORMAT:
            members += [
                _info('etc/nova/' + 'x' * 200, data=b'long name\n'),
                _info('etc/nova/far', tarfile.SYMTYPE,
                      linkname='./' * 60 + 'nova.conf'),
                _info('etc/nova/caf\udce9.conf', data=b'latin-1\n'),
                _info('etc/nova/big-ids', data=b'x', uid=3_000_000,
                      gid=3_000_001),
            ]
        if fmt == tarfile.PAX_FORMAT:
            members += [
                _info('etc/nova/naïve.conf', data=b'utf-8\n',
                      uname='ñova'),
                _info('etc/nova/frac', data=b'y', mtime=1_600_000_000.25),
            ]
        return members

    def test_formats(self):
        for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT,
                    tarfile.USTAR_FORMAT):
            raw = _archive(self.members(fmt), fmt)
            self.assertEqual(_by_tarfile(raw), _parsed(raw), fmt)

    def test_v7_directory_and_global_pax_header(self):
        raw = (_raw_member(_ustar(b'etc/nova/', b'\0')) +
               _raw_member(_ustar(b'././@PaxHeader', b'g', b'%011o' % 18),
                           _rec('uname', b'operator')) +
               _raw_member(_ustar(b'etc/nova/a', b'0', b'1'), b'A') +
               _raw_member(_ustar(b'nova/b', b'0', b'1', prefix=b'etc'),
                           b'B') + _end())
        got = _parsed(raw)
        self.assertEqual(_by_tarfile(raw), got)
        self.assertEqual(['etc/nova', 'etc/nova/a', 'etc/nova/b'],
                         [m['name'] for m, _ in got])
        self.assertEqual(tarfile.DIRTYPE, got[0][0]['type'])
        self.assertEqual('operator', got[2][0]['uname'])

    def test_restores_a_gnu_format_archive(self):
        members = self.members(tarfile.GNU_FORMAT)
        staging = self.useFixture(fixtures.TempDir()).path
        target = os.path.join(staging, 'nova')
        archive.extract_archive(_compress(_archive(members,
                                                   tarfile.GNU_FORMAT)),
                                {'etc/nova': target})
        with open(os.path.join(target, 'x' * 200), 'rb') as f:
            self.assertEqual(b'long name\n', f.read())
        self.assertEqual('./' * 60 + 'nova.conf',
                         os.readlink(os.path.join(target, 'far')))


class HostileTarTest(base.TestCase):
    """Damaged or hostile tar streams: refused, nothing written outside."""

    def setUp(self):
        super().setUp()
        self.base = self.useFixture(fixtures.TempDir()).path
        self.outside = self.useFixture(fixtures.TempDir()).path
        self.targets = {'etc/nova': os.path.join(self.base, 'nova')}

    def refused(self, raw: bytes, error=exception.ArtifactCorrupt,
                verify=True):
        if verify:
            # verify applies the restore's rule too.
            self.assertRaises(error, archive.verify_archive, _compress(raw))
        # Restores extract without hashing files: as strict about the rest.
        for hash_files in (False, True):
            shutil.rmtree(self.base)
            os.mkdir(self.base)
            exc = self.assertRaises(error, archive.extract_archive,
                                    _compress(raw), self.targets,
                                    hash_files=hash_files)
        self.assertEqual([], os.listdir(self.outside))
        return exc

    def top(self) -> bytes:
        info, _ = _info('etc/nova', tarfile.DIRTYPE)
        return _header(info)

    def test_every_truncation_is_corrupt(self):
        members = [_info('etc/nova', tarfile.DIRTYPE),
                   _info('etc/nova/a', data=b'a' * 700),
                   _info('etc/nova/' + 'l' * 150, data=b'long\n')]
        raw = _archive(members)
        complete = len(raw)
        archive.verify_archive(_compress(raw))
        for cut in list(range(0, complete, 97)) + [complete - 1]:
            self.assertRaises(exception.ArtifactCorrupt,
                              archive.verify_archive, _compress(raw[:cut]))

    def test_bad_header_checksum(self):
        good = _raw_member(_ustar(b'etc/nova/a', b'0', b'1'), b'A')
        bad = bytearray(good)
        bad[0:9] = b'etc/nova/'
        bad[9] = ord('b')
        exc = self.refused(self.top() + bytes(bad) +
                           _manifest([{'path': 'etc/nova', 'type': 'dir'}]) +
                           _end())
        self.assertIn('checksum', exc.message)

    def test_checksum_sum_is_exact(self):
        for block in (bytes(512), b'\xff' * 512, b'\x7f\x80' * 256,
                      os.urandom(512)):
            self.assertEqual(sum(block), reader._byte_sum(block))

    def test_malformed_pax_records(self):
        for records in (b'30 path=etc/nova/x\n',     # wrong length
                        b'abc path=etc/nova/x\n',
                        b'19 pathetc/nova/xy\n',      # no '='
                        b'19 path=etc/nova/xy',       # no newline
                        b'0 path=x\n',
                        b'999999999999999999999999 path=x\n'):
            self.refused(self.top() + _pax(records) +
                         _raw_member(_ustar(b'etc/nova/a', b'0', b'1'),
                                     b'A') + _end())

    def test_bad_pax_numbers(self):
        for key, value in (('size', b'-5'), ('size', b'1e3'),
                           ('size', b' 5'), ('uid', b'x'), ('gid', b'-1'),
                           ('mtime', b'inf'), ('mtime', b'nan'),
                           ('mtime', b'1e9')):
            self.refused(self.top() + _pax(_rec(key, value)) +
                         _raw_member(_ustar(b'etc/nova/a', b'0', b'1'),
                                     b'A') + _end())

    def test_bad_header_numbers(self):
        for mode, size in ((b'0o644', b'1'), (b'+644', b'1'), (b'0644', b'9'),
                           (b'0644', b'-1'), (b'0644', b'\xff' * 11)):
            self.refused(self.top() +
                         _raw_member(_ustar(b'etc/nova/a', b'0', size,
                                            mode=mode), b'A') + _end())

    def test_extended_header_without_member(self):
        self.refused(self.top() + _pax(_rec('path', b'etc/nova/x')) + _end())
        long = _raw_member(_ustar(b'././@LongLink', b'L', b'%011o' % 11),
                           b'etc/nova/x\0')
        self.refused(self.top() + long + _end())

    def test_oversized_extended_header(self):
        # Refused from its size field, before its data is read.
        header = _ustar(b'././@PaxHeader', b'x', b'%011o' % (64 << 20))
        exc = self.refused(self.top() + header + bytes(4096))
        self.assertIn('extended header', exc.message)

    def test_names_from_extended_headers_are_checked(self):
        file_a = _raw_member(_ustar(b'etc/nova/a', b'0', b'1'), b'A')
        for prefix, why in (
                (_pax(_rec('path', b'../../x/y/z')), '".." in name'),
                (_pax(_rec('path', b'/etc/nova/passwd')), 'absolute name'),
                (_raw_member(_ustar(b'././@LongLink', b'L', b'%011o' % 17),
                             b'etc/nova/../../x\0'), '".." in name')):
            exc = self.refused(self.top() + prefix + file_a + _end(),
                               exception.UnsafeArchive)
            self.assertIn(why, exc.message)
        exc = self.refused(
            self.top() + _raw_member(_ustar(b'passwd', b'0', b'1',
                                            prefix=b'/etc'), b'A') + _end(),
            exception.UnsafeArchive)
        self.assertIn("'/etc/passwd'", exc.message)

    def test_pax_link_target_is_restored_as_it_is(self):
        def raw(target):
            return (self.top() + _pax(_rec('linkpath', b'../../')) +
                    _raw_member(_ustar(b'etc/nova/l', b'2')) +
                    _manifest([{'path': 'etc/nova', 'type': 'dir'},
                               {'path': 'etc/nova/l', 'type': 'symlink',
                                'target': target}]) + _end())
        archive.extract_archive(_compress(raw('../../')), self.targets)
        self.assertEqual('../../', os.readlink(os.path.join(
            self.targets['etc/nova'], 'l')))
        # The pax target is the one the manifest must match.
        exc = self.refused(raw('../..'))
        self.assertIn("target '../../', manifest says '../..'", exc.message)

    def test_sparse_members_are_refused(self):
        file_a = _raw_member(_ustar(b'etc/nova/a', b'0', b'1'), b'A')
        entries = [{'path': 'etc/nova', 'type': 'dir'},
                   {'path': 'etc/nova/a', 'type': 'file', 'size': 1,
                    'sha256': hashlib.sha256(b'A').hexdigest()}]
        for raw in (self.top() + _pax(_rec('GNU.sparse.major', b'1')) +
                    file_a + _manifest(entries) + _end(),
                    self.top() + file_a.replace(b'0', b'S', 1)):
            self.refused(raw, (exception.UnsafeArchive,
                               exception.ArtifactCorrupt))
        good = self.top() + file_a + _manifest(entries) + _end()
        archive.extract_archive(_compress(good), self.targets)

    def test_duplicate_through_pax_path(self):
        file_a = _raw_member(_ustar(b'etc/nova/a', b'0', b'1'), b'A')
        file_b = _raw_member(_ustar(b'etc/nova/b', b'0', b'1'), b'B')
        exc = self.refused(self.top() + file_a +
                           _pax(_rec('path', b'etc/nova/a')) + file_b + _end())
        self.assertIn('duplicate', exc.message)


class InflateTest(base.TestCase):
    """streams.inflate: bounded pieces, and truncation is never an end."""

    def frames(self) -> list[bytes]:
        level1 = streams.zstandard.ZstdCompressor(level=1,
                                                  write_checksum=True)
        plain = streams.zstandard.ZstdCompressor(level=19)
        skippable = ((0x184D2A53).to_bytes(4, 'little') +
                     (5).to_bytes(4, 'little') + b'12345')
        self.random = os.urandom(5_000)
        return [level1.compress(self.random * 3), skippable,
                plain.compress(b'hello ' * 50_000), level1.compress(b'')]

    def test_frames_decode(self):
        data = b''.join(self.frames())
        self.assertEqual(self.random * 3 + b'hello ' * 50_000,
                         b''.join(streams.inflate(io.BytesIO(data))))
        self.assertEqual(b'', b''.join(streams.inflate(io.BytesIO(b''))))

    def test_every_cut_is_truncation(self):
        frames = self.frames()
        data = b''.join(frames)
        between = {sum(map(len, frames[:i])) for i in range(1, 4)}
        clean = set()
        for cut in range(1, len(data)):
            try:
                b''.join(streams.inflate(io.BytesIO(data[:cut])))
            except streams.TruncatedStream as exc:
                self.assertIn('truncated', str(exc))
            except streams.zstandard.ZstdError:
                pass
            else:
                clean.add(cut)
        self.assertEqual(between, clean)

    def test_pieces_stay_small_for_zeros(self):
        out = io.BytesIO()
        writer = streams.compressor(out, level=1)
        for _ in range(64):
            writer.write(bytes(1 << 20))
        writer.close()
        self.assertLess(len(out.getvalue()), 64 << 10)
        sizes = [len(p) for p in streams.inflate(io.BytesIO(
            out.getvalue()))]
        self.assertEqual(64 << 20, sum(sizes))
        self.assertLessEqual(max(sizes), streams._PIECE)
        # The readable stream the database drivers use holds no more.
        reader = streams.decompressor(io.BytesIO(out.getvalue()))
        total = 0
        while data := reader.read(1000):
            self.assertLessEqual(len(reader._buffer), streams._PIECE)
            total += len(data)
            if total > 4 << 20:
                break
        self.assertEqual(b'', bytes(reader.read(0)))

    def test_decompressor_reads_frames_and_finds_truncation(self):
        frames = self.frames()
        data = b''.join(frames)
        reader = streams.decompressor(io.BytesIO(data))
        got = [reader.read(7), reader.read(100_000)]
        got.append(reader.read())
        self.assertEqual(self.random * 3 + b'hello ' * 50_000, b''.join(got))
        self.assertEqual(b'', reader.read(10))
        cut = streams.decompressor(io.BytesIO(data[:len(frames[0]) // 2]))
        self.assertRaisesRegex(streams.TruncatedStream, 'truncated',
                               cut.read, 1 << 20)

    def test_garbage_is_an_error(self):
        good = _compress(b'data').getvalue()
        for bad in (good + b'garbage!', b'plain text, not zstd'):
            self.assertRaises(streams.zstandard.ZstdError, list,
                              streams.inflate(io.BytesIO(bad)))


class AheadTest(base.TestCase):

    def test_items_in_order(self):
        self.assertEqual(list(range(100)),
                         list(streams.Ahead(iter(range(100)), depth=2)))

    def test_error_reaches_the_caller(self):
        def items():
            yield 1
            yield 2
            raise OSError('disk gone')
        ahead = streams.Ahead(items())
        self.assertEqual(1, next(ahead))
        self.assertEqual(2, next(ahead))
        exc = self.assertRaises(OSError, next, ahead)
        self.assertEqual('disk gone', str(exc))
        self.assertFalse(ahead._thread.is_alive())

    def test_bounded_and_closable(self):
        made = []

        def endless():
            while True:
                made.append(len(made))
                yield made[-1]
        ahead = streams.Ahead(endless(), depth=3)
        self.assertEqual(0, next(ahead))
        while not ahead._queue.full():
            threading.Event().wait(0.01)
        # One taken, three queued, one waiting to be queued.
        self.assertLessEqual(len(made), 5)
        ahead.close()
        self.assertFalse(ahead._thread.is_alive())
        self.assertRaises(StopIteration, next, ahead)


class ReadAheadTest(base.TestCase):

    def test_reads_the_whole_source_in_order(self):
        data = os.urandom(3 * streams.CHUNK + 5)
        source = streams.HashingReader(io.BytesIO(data))
        ahead = streams.ReadAhead(source)
        got = [ahead.read(7), ahead.read(streams.CHUNK)]
        while piece := ahead.read(streams.CHUNK):
            got.append(piece)
        self.assertEqual(data, b''.join(got))
        self.assertEqual(7, len(got[0]))
        self.assertEqual(hashlib.sha256(data).hexdigest(), source.sha256)
        self.assertEqual(b'', ahead.read())

    def test_error_reaches_the_reader(self):
        class Failing(io.BytesIO):
            def read(self, n=-1):
                raise OSError('storage went away')
        ahead = streams.ReadAhead(Failing())
        self.assertRaisesRegex(OSError, 'storage went away', ahead.read)
        self.assertFalse(ahead._pieces._thread.is_alive())


class ReaderThreadTest(base.TestCase):
    """Extraction errors stop the helper thread before returning."""

    def setUp(self):
        super().setUp()
        self.base = self.useFixture(fixtures.TempDir()).path
        self.targets = {'etc/nova': os.path.join(self.base, 'nova')}
        members = [_info('etc/nova', tarfile.DIRTYPE)] + [
            _info('etc/nova/f%d' % i, data=os.urandom(200_000))
            for i in range(20)]
        self.data = _compress(_archive(members)).getvalue()

    def helpers(self):
        return [t for t in threading.enumerate()
                if t.name == 'osbackup-ahead']

    def test_source_error_is_raised_and_thread_ends(self):
        data = self.data

        class Failing(io.BytesIO):
            def read(self, n=-1):
                if self.tell() > len(data) // 2:
                    raise OSError('storage went away')
                return super().read(min(n, 4096))
        exc = self.assertRaises(OSError, archive.extract_archive,
                                Failing(data), self.targets)
        self.assertEqual('storage went away', str(exc))
        self.assertEqual([], self.helpers())

    def test_unsafe_member_stops_thread(self):
        raw = _archive([_info('etc/nova', tarfile.DIRTYPE),
                        _info('etc/nova/l', tarfile.SYMTYPE,
                              linkname='/etc'),
                        _info('etc/nova/l/passwd', data=b'x')] +
                       [_info('etc/nova/f%d' % i, data=os.urandom(100_000))
                        for i in range(30)])
        self.assertRaises(exception.UnsafeArchive, archive.extract_archive,
                          _compress(raw), self.targets)
        self.assertEqual([], self.helpers())

    def test_whole_source_read_once(self):
        reader = streams.HashingReader(io.BytesIO(self.data))
        archive.extract_archive(reader, self.targets)
        self.assertEqual(len(self.data), reader.size)
        self.assertEqual(hashlib.sha256(self.data).hexdigest(),
                         reader.sha256)
        self.assertEqual(20, len(os.listdir(self.targets['etc/nova'])))


class HashFilesTest(base.TestCase):
    """hash_files=False: what the restore relies on, and what it leaves."""

    def setUp(self):
        super().setUp()
        self.base = self.useFixture(fixtures.TempDir()).path
        self.targets = {'etc/nova': os.path.join(self.base, 'nova')}
        self.members = [_info('etc/nova', tarfile.DIRTYPE),
                        _info('etc/nova/a.conf', data=b'[DEFAULT]\n'),
                        _info('etc/nova/big', data=os.urandom(300_000))]

    def test_no_file_is_hashed(self):
        raw = _archive(self.members)
        self.useFixture(fixtures.MockPatch(
            'osbackup.archive.reader.hashlib.sha256',
            side_effect=AssertionError('file data hashed')))
        archive.extract_archive(_compress(raw), self.targets,
                                hash_files=False)
        with open(os.path.join(self.base, 'nova', 'a.conf'), 'rb') as f:
            self.assertEqual(b'[DEFAULT]\n', f.read())

    def test_hashing_finds_data_that_differs_from_the_manifest(self):
        entries = [_entry(i, d) for i, d in self.members]
        # Same size, other bytes: only a hash can tell.
        raw = _archive([self.members[0],
                        _info('etc/nova/a.conf', data=b'[DEFAULT]\r'),
                        self.members[2]], entries=entries)
        exc = self.assertRaises(exception.ArtifactCorrupt,
                                archive.extract_archive, _compress(raw),
                                self.targets)
        self.assertIn("'etc/nova/a.conf': sha256", exc.message)
        # Without hashing it is the caller's whole-stream check that must
        # catch it (the restore's sha256 against the catalogue).
        shutil.rmtree(self.base)
        os.mkdir(self.base)
        archive.extract_archive(_compress(raw), self.targets,
                                hash_files=False)

    def test_sizes_types_and_missing_members_still_checked(self):
        entries = [_entry(i, d) for i, d in self.members]
        for members, why in (
                ([self.members[0], _info('etc/nova/a.conf', data=b'x'),
                  self.members[2]], "'etc/nova/a.conf': size"),
                ([self.members[0], _info('etc/nova/a.conf', tarfile.SYMTYPE,
                                         linkname='big'),
                  self.members[2]], "'etc/nova/a.conf': type"),
                (self.members[:2], "lacks member 'etc/nova/big'")):
            shutil.rmtree(self.base)
            os.mkdir(self.base)
            exc = self.assertRaises(
                exception.ArtifactCorrupt, archive.extract_archive,
                _compress(_archive(members, entries=entries)), self.targets,
                hash_files=False)
            self.assertIn(why, exc.message)

    def test_third_thread_takes_the_costliest_stage(self):
        raw = _compress(_archive(self.members))
        names = []
        real = streams.Ahead.__init__

        def spy(ahead, iterator, depth=4):
            names.append(getattr(iterator, '__name__',
                                 type(iterator).__name__))
            real(ahead, iterator, depth)
        self.useFixture(fixtures.MockPatchObject(streams.Ahead, '__init__',
                                                 spy))
        archive.verify_archive(raw)
        self.assertEqual(['batches', 'inflate'], sorted(names))
        names.clear()
        archive.extract_archive(_compress(_archive(self.members)),
                                self.targets, hash_files=False)
        # Restores read (and hash the artifact) in a thread of their own.
        self.assertEqual(['batches', 'callable_iterator'], sorted(names))
        self.assertEqual([], [t for t in threading.enumerate()
                              if t.name == 'osbackup-ahead'])

"""The swift and s3 backends against a real Swift all-in-one.

One Swift (``swift_cluster``) answers both APIs: the native one through
tempauth for the swift backend, S3 through the s3api middleware for the
s3 backend. The same contract tests run against both; part sizes are
small so that multipart objects stay a few MiB. Since the cluster's one
device is a directory here, the tests corrupt stored objects directly on
it.
"""

import contextlib
import hashlib
import os
import threading
import time
import unittest
import uuid

import boto3
import swiftclient

from osbackup import exception
from osbackup import storage as storage_mod
from osbackup.storage import encrypted
from osbackup.storage import swift
from osbackup.tests import base
from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.functional import swift_cluster
from osbackup.tests import storage_contract

MiB = 1 << 20


def read_all(storage, location, size=MiB):
    digest, total = hashlib.sha256(), 0
    with contextlib.closing(storage.open_reader(location)) as reader:
        while True:
            chunk = reader.read(size)
            if not chunk:
                return digest.hexdigest(), total
            digest.update(chunk)
            total += len(chunk)


def s3_client(cluster):
    """A plain boto3 client of the cluster's S3 API, as another program."""
    flags = cluster.s3_flags()
    return boto3.client('s3', endpoint_url=flags['endpoint_url'],
                        aws_access_key_id=flags['access_key'],
                        aws_secret_access_key=flags['secret_key'],
                        region_name='us-east-1')


def payload(size):
    # Random data so that no two parts are alike.
    return os.urandom(size)


class _Contract(storage_contract.ListingContract):
    """What every object-store backend must do; subclasses say how."""

    group = ''
    part = 0    # the smallest part size the backend and server take

    def setUp(self):
        super().setUp()
        self.cluster = swift_cluster.shared_or_skip(self)
        self.container = 'osb-%s' % uuid.uuid4().hex[:10]

    # -- per backend -------------------------------------------------------

    backend = ''
    wrong_key = {}

    def options(self):
        """The backend's options for this test's container/bucket."""
        raise NotImplementedError

    def storage(self, bad_key=False, **flags):
        options = dict(self.options(), retries=3)
        options.update(flags)
        if bad_key:
            options.update(self.wrong_key)
        self.flags(group='%s_storage' % self.backend, **options)
        storage = storage_mod.get_storage(self.cfg.conf, self.backend)
        storage.retrier.start = 0.2     # quick back-off in tests
        return storage

    def leftovers(self, key):
        """Parts (segments, multipart uploads) stored for ``key``."""
        raise NotImplementedError

    def replace(self, key, data):
        """Overwrite ``key`` with ``data``, keeping its osbackup metadata."""
        raise NotImplementedError

    def stored_file(self, key):
        """The .data file on the device holding ``key``'s (first) bytes."""
        raise NotImplementedError

    def listing_storage(self):
        self.container = 'osb-%s' % uuid.uuid4().hex[:10]
        return self.storage()

    @property
    def multipart_size(self):
        return self.part

    def abandon(self, writer):
        # A writer that dies: never committed, never aborted.
        writer._shutdown()

    # -- helpers -------------------------------------------------------------

    def put(self, storage, key, data, step=MiB):
        with storage.open_writer(key) as writer:
            for start in range(0, len(data), step):
                writer.write(data[start:start + step])
            return writer.commit()

    # -- the tests -----------------------------------------------------------

    def test_small_object_round_trip(self):
        storage = self.storage()
        data = payload(100_000)
        location = self.put(storage, 'ctl-1/7/nova/nova.tar.zst', data)
        self.assertEqual('%s//%s/ctl-1/7/nova/nova.tar.zst'
                         % (storage.scheme, self.container), location)
        self.assertTrue(storage.exists(location))
        self.assertEqual((hashlib.sha256(data).hexdigest(), len(data)),
                         read_all(storage, location))
        self.assertEqual([], self.leftovers('ctl-1/7/nova/nova.tar.zst'))
        storage.delete(location)
        self.assertFalse(storage.exists(location))
        storage.delete(location)    # gone already: not an error

    def test_multipart_object_round_trip(self):
        storage = self.storage()
        data = payload(3 * self.part + 12345)
        key = 'ctl-1/8/mysql/all.sql.zst'
        location = self.put(storage, key, data, step=300_000)
        self.assertEqual(hashlib.sha256(data).hexdigest(),
                         read_all(storage, location, 777_777)[0])
        self.assertEqual(4, self.parts_of(key))
        storage.delete(location)
        self.assertFalse(storage.exists(location))
        self.assertEqual([], self.leftovers(key))

    def test_aborted_upload_leaves_nothing(self):
        storage = self.storage()
        key = 'ctl-1/9/nova/nova.tar.zst'
        writer = storage.open_writer(key)
        writer.write(payload(2 * self.part + 1))
        self.assertNotEqual([], self.leftovers(key) or self._wait_parts(key))
        writer.abort()
        self.assertFalse(storage.exists(storage.location(key)))
        self.assertEqual([], self.leftovers(key))

    def _wait_parts(self, key):
        # Parts upload in the background: wait for the first one.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = self.leftovers(key)
            if found:
                return found
            time.sleep(0.1)
        return []

    def test_failure_inside_the_write_aborts(self):
        storage = self.storage()
        key = 'ctl-1/10/nova/nova.tar.zst'

        class Boom(Exception):
            pass

        with self.assertRaises(Boom):
            with storage.open_writer(key) as writer:
                writer.write(payload(2 * self.part + 1))
                raise Boom()
        self.assertFalse(storage.exists(storage.location(key)))
        self.assertEqual([], self.leftovers(key))

    def test_interrupted_upload_removed_by_cleanup(self):
        storage = self.storage()
        mine, other = 'ctl-1/11/nova/nova.tar.zst', 'ctl-10/11/nova/n.tar.zst'
        kept = self.put(storage, 'ctl-1/12/nova/nova.tar.zst',
                        payload(2 * self.part + 1))
        for key in (mine, other):
            # A writer that dies: never committed, never aborted.
            writer = storage.open_writer(key)
            writer.write(payload(self.part + 1))
            writer.write(payload(self.part))
            writer._shutdown()
            self.assertTrue(self.leftovers(key))
        # Orphans younger than a day wait for the upload to finish.
        self.assertEqual([], storage.cleanup_orphans())
        self.assertTrue(storage.cleanup_partials('ctl-1'))
        self.assertEqual([], self.leftovers(mine))
        self.assertTrue(self.leftovers(other))    # another host's
        # Stores date uploads to the second (s3api rounds up).
        time.sleep(2)
        self.assertTrue(storage.cleanup_orphans(max_age=1))
        self.assertEqual([], self.leftovers(other))
        # The committed object keeps its parts.
        self.assertEqual(2 * self.part + 1, read_all(storage, kept)[1])

    def test_corrupted_object_detected_on_read(self):
        storage = self.storage()
        for key, size in (('ctl-1/13/a.tar.zst', 50_000),
                          ('ctl-1/13/b.tar.zst', 2 * self.part + 7)):
            location = self.put(storage, key, payload(size))
            path = self.stored_file(key)
            with open(path, 'r+b') as f:
                f.seek(1000)
                byte = f.read(1)
                f.seek(1000)
                f.write(bytes([byte[0] ^ 0x01]))
            error = self.assertRaises(exception.ArtifactCorrupt, read_all,
                                      storage, location)
            self.assertIn(location, str(error))

    def test_truncated_object_detected_on_read(self):
        """Cut short in place, its recorded checksum kept: caught."""
        storage = self.storage()
        data = payload(80_000)
        location = self.put(storage, 'ctl-1/14/a.tar.zst', data)
        self.replace('ctl-1/14/a.tar.zst', data[:60_000])
        error = self.assertRaises(exception.ArtifactCorrupt, read_all,
                                  storage, location)
        self.assertIn('sha256', str(error))

    def test_missing_object(self):
        storage = self.storage()
        location = storage.location('ctl-1/15/none.tar.zst')
        self.assertFalse(storage.exists(location))
        error = self.assertRaises(exception.NotFound, storage.open_reader,
                                  location)
        self.assertIn('missing', str(error))
        self.assertRaises(exception.InvalidInput, storage.open_reader,
                          '%s//elsewhere/ctl-1/x' % storage.scheme)

    def test_wrong_credentials_one_line_error(self):
        storage = self.storage(bad_key=True)
        error = self.assertRaises(exception.StorageError, self.put, storage,
                                  'ctl-1/16/x', b'data')
        self.assertNotIn('\n', str(error))
        self.assertIn(self.group, str(error))

    def test_encryption_on_top(self):
        key_file = os.path.join(self.state_dir, 'storage.key')
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600),
                  'w') as f:
            f.write(os.urandom(32).hex())
        self.flags(group='storage', encryption_key_file=key_file)
        storage = encrypted.wrap(self.cfg.conf, self.storage())
        data = payload(2 * self.part + 99)
        location = self.put(storage, 'ctl-1/17/nova.tar.zst', data)
        self.assertTrue(location.endswith('.enc'))
        self.assertEqual(hashlib.sha256(data).hexdigest(),
                         read_all(storage, location)[0])
        # Stored as ciphertext.
        raw = storage.inner.open_reader(location)
        self.assertNotEqual(data[:1000], raw.read(1000))
        raw.close()


class SwiftStorageTest(_Contract, base.TestCase):

    group = '[swift_storage]'
    part = MiB

    backend = 'swift'

    def options(self):
        return dict(self.cluster.swift_flags(), container=self.container,
                    segment_size=self.part)

    wrong_key = {'key': 'wrong'}

    def client(self):
        flags = self.cluster.swift_flags()
        return swiftclient.Connection(authurl=flags['auth_url'],
                                      user=flags['user'], key=flags['key'],
                                      retries=0)

    def _segments(self, key):
        try:
            _h, listing = self.client().get_container(
                self.container + '_segments', prefix=key + '/',
                full_listing=True)
        except swiftclient.ClientException as exc:
            if exc.http_status == 404:
                return []
            raise
        return [item['name'] for item in listing]

    def leftovers(self, key):
        return self._segments(key)

    def parts_of(self, key):
        return len(self._segments(key))

    def stored_file(self, key):
        # Sizes differ between the manifest and its segments: the
        # largest .data file written last for this test is the one.
        conn = self.client()
        headers = conn.head_object(self.container, key)
        target = key
        if headers.get('x-static-large-object', '').lower() == 'true':
            target = self._segments(key)[0]
        files = self.cluster.object_files()
        size = int(conn.head_object(
            self.container + '_segments' if target != key
            else self.container, target)['content-length'])
        matching = [p for p in files if os.path.getsize(p) == size]
        return max(matching, key=os.path.getmtime)

    def replace(self, key, data):
        conn = self.client()
        headers = conn.head_object(self.container, key)
        conn.put_object(self.container, key, contents=data, headers={
            swift.SHA256_HEADER: headers[swift.SHA256_HEADER]})

    def test_container_created_with_the_storage_policy(self):
        storage = self.storage(storage_policy='silver')
        self.put(storage, 'ctl-1/20/a', payload(3 * MiB))
        conn = self.client()
        for container in (self.container, self.container + '_segments'):
            self.assertEqual('silver', conn.head_container(container)[
                'x-storage-policy'])

    def test_reader_without_write_access(self):
        storage = self.storage()
        self.put(storage, 'ctl-1/21/a', b'x')
        reader = swift_cluster.READER
        denied = self.storage(user='%s:%s' % reader[:2], key=reader[2])
        error = self.assertRaises(exception.StorageError, self.put, denied,
                                  'ctl-1/21/b', b'y')
        self.assertIn('403', str(error))

    def test_quota_exceeded_and_free_bytes(self):
        storage = self.storage()
        self.put(storage, 'ctl-1/22/a', payload(3 * MiB))
        conn = self.client()
        conn.post_container(self.container, {
            'X-Container-Meta-Quota-Bytes': str(100 * MiB)})
        conn.post_container(self.container + '_segments', {
            'X-Container-Meta-Quota-Bytes': str(3 * MiB + 512 * 1024)})
        fresh = self.storage()
        # 3 MiB of segments are used already: the tighter quota wins.
        self.assertEqual(512 * 1024, fresh.free_bytes())
        error = self.assertRaises(exception.InsufficientSpace, self.put,
                                  fresh, 'ctl-1/22/b', payload(3 * MiB))
        self.assertIn('quota', str(error))
        self.assertFalse(fresh.exists(fresh.location('ctl-1/22/b')))
        self.assertEqual([], self.leftovers('ctl-1/22/b'))

    def test_upload_survives_a_server_outage(self):
        """503s while the object server is down: retried, then done."""
        storage = self.storage(retries=8)
        data = payload(3 * MiB + 5)
        cluster = self.cluster
        writer = storage.open_writer('ctl-1/23/a')
        writer.write(data[:MiB + 1])
        cluster.procs['object'].terminate()
        cluster.procs['object'].wait()
        restart = threading.Timer(2.0, cluster._start, ('object',))
        restart.start()
        self.addCleanup(restart.cancel)
        writer.write(data[MiB + 1:])
        location = writer.commit()
        self.assertEqual(hashlib.sha256(data).hexdigest(),
                         read_all(storage, location)[0])


class S3StorageTest(_Contract, base.TestCase):

    group = '[s3_storage]'
    part = 5 * MiB

    backend = 's3'

    def options(self):
        return dict(self.cluster.s3_flags(), bucket=self.container,
                    part_size=self.part)

    wrong_key = {'secret_key': 'wrong'}

    def client(self):
        return s3_client(self.cluster)

    def leftovers(self, key):
        uploads = self.client().list_multipart_uploads(
            Bucket=self.container, Prefix=key).get('Uploads', [])
        return [u['UploadId'] for u in uploads]

    def parts_of(self, key):
        etag = self.client().head_object(Bucket=self.container,
                                         Key=key)['ETag']
        return int(etag.strip('"').rpartition('-')[2])

    def stored_file(self, key):
        head = self.client().head_object(Bucket=self.container, Key=key)
        size = head['ContentLength']
        if '-' in head['ETag']:
            size = self.part
        files = self.cluster.object_files()
        matching = [p for p in files if os.path.getsize(p) == size]
        return max(matching, key=os.path.getmtime)

    def replace(self, key, data):
        client = self.client()
        meta = client.head_object(Bucket=self.container, Key=key)['Metadata']
        client.put_object(Bucket=self.container, Key=key, Body=data,
                          Metadata=meta)

    def test_bucket_shared_with_other_data(self):
        client = self.client()
        storage = self.storage()
        self.put(storage, 'ctl-1/30/a', b'mine')
        client.put_object(Bucket=self.container, Key='ctl-1/other', Body=b'x')
        foreign = client.create_multipart_upload(Bucket=self.container,
                                                 Key='photos/cat.jpg')
        storage.cleanup_partials('ctl-1')
        self.assertEqual([foreign['UploadId']], self.leftovers('photos/'))
        self.assertEqual(b'x', client.get_object(
            Bucket=self.container, Key='ctl-1/other')['Body'].read())


class FleetObjectStorageTest(fleet_mod.FleetTestCase):
    """Backup, copies, deep verify, restore and delete on a real fleet.

    The agent's primary target is swift (tempauth, the single-target
    [swift_storage] options), encrypted at rest, with copies to the named
    target ``offsite`` (s3 through s3api on the same Swift) and to the
    local directory; segments and parts are small so that artifacts are
    multipart objects.
    """

    @classmethod
    def build_fleet(cls, fleet):
        cls.cluster = swift_cluster.shared()
        cls.container = 'osb-fleet-%s' % fleet.id
        key_file = os.path.join(fleet.dir, 'storage.key')
        fleet_mod.write_file(key_file, os.urandom(32).hex(), 0o600)
        sections = {
            # Prune removes leftovers at once: the test cannot wait a day.
            'storage': {'backend': 'swift', 'local_path': fleet.storage,
                        'encryption_key_file': key_file,
                        'targets': 'offsite', 'leftover_age': '0'},
            'swift_storage': dict(cls.cluster.swift_flags(),
                                  container=cls.container,
                                  segment_size=str(MiB)),
            'offsite': dict(cls.cluster.s3_flags(), backend='s3',
                            bucket=cls.container + '-s3',
                            part_size=str(5 * MiB))}
        root = fleet.node_root('ctl')
        fleet_mod.make_controller_tree(root)
        fleet_mod.write_file(os.path.join(root, 'var/lib/nova/big'),
                             os.urandom(7 * MiB))
        cls.sections = sections
        fleet.start_conductor(sections=sections)
        ctl = fleet.standin_sections('ctl', {'nova': ['nova-api']})
        ctl.update(sections, agent={'drivers': 'nova'})
        fleet.start_agent('ctl', ctl)
        fleet.unit('ctl', 'start', 'nova-api')
        fleet.wait_for_agents([fleet.host('ctl')])

    @classmethod
    def setUpClass(cls):
        try:
            swift_cluster.shared()
        except swift_cluster.SwiftUnavailable as exc:
            raise unittest.SkipTest('SKIPPED: no Swift all-in-one: %s'
                                    % exc)
        super().setUpClass()

    def objects(self, container):
        conn = self.swift()
        try:
            return [o['name'] for o in conn.get_container(
                container, full_listing=True)[1]]
        except swiftclient.ClientException as exc:
            if exc.http_status == 404:
                return []
            raise

    def test_backup_copies_verify_restore_delete(self):
        fleet = self.fleet
        backup, proc = fleet.manage_json(
            'backup', 'create', '--service', 'nova', '--target', 'swift',
            '--target', 'offsite', '--target', 'local', '--wait',
            check=False)
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        (art,) = backup['artifacts']
        copies = {c['target']: c for c in art['copies']}
        self.assertEqual({'swift', 'offsite', 'local'}, set(copies))
        for target, copy in copies.items():
            self.assertEqual(art['sha256'], copy['sha256'], target)
            self.assertTrue(copy['location'].endswith('.enc'), copy)
        self.assertTrue(copies['swift']['location'].startswith(
            'swift://%s/' % self.container))
        self.assertTrue(copies['offsite']['location'].startswith(
            's3://%s-s3/' % self.container))
        # More than one segment: a Static Large Object.
        self.assertGreater(len(self.objects(self.container + '_segments')),
                           1)

        result, _ = fleet.manage_json('backup', 'verify', str(backup['id']),
                                      '--deep')
        self.assertEqual('OK', result['status'], result)
        self.assertEqual({'swift', 'offsite', 'local'},
                         {c['copy'] for c in result['checked']})

        big = os.path.join(fleet.node_root('ctl'), 'var/lib/nova/big')
        with open(big, 'rb') as f:
            want = hashlib.sha256(f.read()).hexdigest()
        os.unlink(big)
        restore, proc = fleet.manage_json(
            'restore', 'create', str(backup['id']), '--service', 'nova',
            '--wait', check=False)
        self.assertEqual('SUCCEEDED', restore['status'],
                         '%s\n%s' % (proc.stderr, restore))
        with open(big, 'rb') as f:
            self.assertEqual(want, hashlib.sha256(f.read()).hexdigest())

        # Restored, then deleted: its restore's history must not keep its
        # rows (a MariaDB catalogue enforces the foreign key).
        deleted, _ = fleet.manage_json('backup', 'delete', str(backup['id']),
                                       '--force')
        self.assertEqual('DELETED', deleted['status'], deleted)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
                self.objects(self.container) or
                self.objects(self.container + '_segments')):
            time.sleep(1)
        self.assertEqual([], self.objects(self.container))
        self.assertEqual([], self.objects(self.container + '_segments'))
        self.assertEqual([], self.objects(self.container + '-s3'))

    def test_catalogue_rebuilt_from_each_object_store_alone(self):
        fleet = self.fleet
        backup, proc = fleet.manage_json(
            'backup', 'create', '--service', 'nova', '--target', 'swift',
            '--target', 'offsite', '--wait', check=False)
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        self.addCleanup(self.empty_containers)
        # Rows and objects both go: a row left without its objects is what
        # the next test's prune would rightly report as missing.
        self.addCleanup(fleet.manage, 'backup', 'delete', str(backup['id']),
                        '--force')
        shown, _ = fleet.manage_json('backup', 'show', str(backup['id']))
        for target in ('swift', 'offsite'):
            # A new machine: the same config and keys, an empty catalogue,
            # and only one object store to read.
            db = '%s_new_%s' % (fleet.catalogue_db, target)
            fleet_mod.sql('CREATE DATABASE %s' % db)
            self.addCleanup(fleet_mod.sql, 'DROP DATABASE IF EXISTS %s' % db)
            conf = fleet.write_conf('new-' + target, fleet.host('conductor'),
                                    dict(self.sections, database={
                                        'connection': fleet_mod.DB_URL + db}))
            fleet.manage('db', 'sync', conf=conf)
            summary, proc = fleet.manage_json('catalogue', 'rebuild',
                                              '--target', target, conf=conf)
            self.assertEqual([], summary['rejected'], proc.stderr)
            self.assertNotIn(backup['uuid'],
                             [i['uuid'] for i in summary['incomplete']])
            rebuilt = {b['uuid']: b for b in fleet.manage_json(
                'backup', 'list', conf=conf)[0]}
            self.assertIn(backup['uuid'], rebuilt, target)
            new, _ = fleet.manage_json(
                'backup', 'show', str(rebuilt[backup['uuid']]['id']),
                conf=conf)
            for key in ('uuid', 'hosts', 'services', 'created_at'):
                self.assertEqual(shown[key], new[key], key)
            self.assertEqual(
                [(a['host'], a['name'], a['sha256']) for a in
                 shown['artifacts']],
                [(a['host'], a['name'], a['sha256']) for a in
                 new['artifacts']])
            for art in new['artifacts']:
                copies = {c['target']: c for c in art['copies']}
                self.assertIn(target, copies, art)
                self.assertEqual(art['sha256'], copies[target]['sha256'])
            # The store alone proves the newest backup can be read back.
            check, proc = fleet.manage_json('backup', 'check', '--dr',
                                            '--target', target, conf=conf,
                                            check=False)
            self.assertEqual('OK', check['state'],
                             '%s\n%s' % (check, proc.stderr))
            self.assertIn(backup['uuid'],
                          {i['backup_uuid'] for i in check['items']})

    def forget(self, backup_id):
        """Drop a backup's catalogue rows, as a lost late report would."""
        db = self.fleet.catalogue_db
        arts = 'SELECT id FROM artifacts WHERE backup_id = %d' % backup_id
        for statement in (
                'DELETE FROM artifact_copies WHERE artifact_id IN (%s)'
                % arts,
                'DELETE FROM artifacts WHERE backup_id = %d' % backup_id,
                'DELETE FROM tasks WHERE backup_id = %d' % backup_id,
                'DELETE FROM backups WHERE id = %d' % backup_id):
            fleet_mod.sql(statement, db)

    def s3(self):
        return s3_client(self.cluster)

    def test_orphans_reported_leftovers_pruned_others_untouched(self):
        fleet = self.fleet
        bucket = self.container + '-s3'
        backup, proc = fleet.manage_json(
            'backup', 'create', '--service', 'nova', '--target', 'swift',
            '--target', 'offsite', '--wait', check=False)
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        self.addCleanup(self.empty_containers)
        locations = {c['location'] for a in backup['artifacts']
                     for c in a['copies']}
        self.forget(backup['id'])

        # An upload killed half-way on each API, in osbackup's layout.
        s3 = self.s3()
        key = 'ctl/%s/nova/nova.tar.zst.enc' % uuid.uuid4()
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
        s3.upload_part(Bucket=bucket, Key=key, PartNumber=1,
                       UploadId=upload['UploadId'], Body=b'x' * 1000)
        conn = self.swift()
        segment = '%s/%s/00000001' % (key, swift.upload_id(
            time.time() - 2 * 86400))
        conn.put_object(self.container + '_segments', segment, b'y' * 1000)
        # Another program's data in the same bucket and containers.
        s3.put_object(Bucket=bucket, Key='photos/cat.jpg', Body=b'meow')
        foreign = s3.create_multipart_upload(Bucket=bucket,
                                             Key='photos/dog.jpg')
        conn.put_object(self.container, 'notes/today.txt', b'hello')
        # s3api gives an upload's start in whole seconds, rounded up: with
        # leftover_age = 0, a prune within that second keeps the upload.
        time.sleep(1.2)

        report, _ = fleet.manage_json('backup', 'prune')
        # Complete objects without a row: reported, kept.
        self.assertEqual(locations, {o['location']
                                     for o in report['orphans']})
        for orphan in report['orphans']:
            self.assertGreater(orphan['size'], 0)
            self.assertTrue(orphan['mtime'].endswith('Z'), orphan)
        self.assertEqual([], report['missing'])
        self.assertEqual([], report['errors'])
        self.assertEqual([], report['orphans_deleted'])
        # Leftovers: gone. Others' data: untouched.
        uploads = s3.list_multipart_uploads(Bucket=bucket).get('Uploads', [])
        self.assertEqual([foreign['UploadId']],
                         [u['UploadId'] for u in uploads])
        self.assertNotIn(segment, self.objects(self.container + '_segments'))

        report, _ = fleet.manage_json('backup', 'prune', '--delete-orphans',
                                      '--orphan-age', '0')
        self.assertEqual(locations, {o['location']
                                     for o in report['orphans_deleted']})
        report, _ = fleet.manage_json('backup', 'prune')
        self.assertEqual([], report['orphans'])
        self.assertEqual(b'meow', s3.get_object(
            Bucket=bucket, Key='photos/cat.jpg')['Body'].read())
        self.assertIn('notes/today.txt', self.objects(self.container))
        s3.abort_multipart_upload(Bucket=bucket, Key='photos/dog.jpg',
                                  UploadId=foreign['UploadId'])

    def swift(self):
        flags = self.cluster.swift_flags()
        return swiftclient.Connection(authurl=flags['auth_url'],
                                      user=flags['user'], key=flags['key'],
                                      retries=0)

    def empty_containers(self):
        conn = self.swift()
        for container in (self.container, self.container + '_segments',
                          self.container + '-s3'):
            for name in self.objects(container):
                conn.delete_object(container, name)

    def test_policy_takes_named_targets(self):
        policy, _ = self.fleet.manage_json(
            'policy', 'create', 'twice', '--schedule', '0 3 * * *',
            '--keep-last', '3', '--target', 'swift', '--target', 'offsite')
        self.addCleanup(self.fleet.manage, 'policy', 'delete', 'twice',
                        check=False)
        self.assertEqual(['swift', 'offsite'], policy['targets'])
        proc = self.fleet.manage('policy', 'create', 'bad', '--schedule',
                                 '0 3 * * *', '--keep-last', '3',
                                 '--target', 'nowhere', check=False)
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('nowhere', proc.stderr)
        self.assertNotIn('Traceback', proc.stderr)

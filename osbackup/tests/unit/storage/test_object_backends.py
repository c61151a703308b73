"""swift and s3 backends: option checks, error mapping, request shapes.

The request/response cycle itself runs against a real Swift in the
functional tests; here botocore's Stubber and swiftclient's exceptions
stand in where a real server cannot produce the case.
"""

import datetime

from botocore import exceptions as boto
from botocore import stub
import requests
from swiftclient import exceptions as swift_exc

from osbackup import exception
from osbackup.storage import s3
from osbackup.storage import swift
from osbackup.tests import base


class SwiftTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.flags(group='swift_storage', auth_url='http://keystone/v3',
                   user='osbackup', key='secret', project_name='service')
        self.storage = swift.SwiftStorage(self.cfg.conf)

    def classify(self, exc):
        return self.storage.classify(exc, 'Uploading swift://osbackup/k')

    def client_error(self, status, body=''):
        return swift_exc.ClientException('Object PUT failed',
                                         http_status=status,
                                         http_response_content=body)

    def test_missing_options_are_one_line_errors(self):
        self.flags(group='swift_storage', auth_url=None)
        error = self.assertRaises(exception.InvalidInput,
                                  swift.SwiftStorage, self.cfg.conf)
        self.assertIn('[swift_storage] auth_url', str(error))
        self.flags(group='swift_storage', auth_url='http://k/v3', key=None)
        self.assertRaises(exception.InvalidInput, swift.SwiftStorage,
                          self.cfg.conf)
        # An application credential replaces user and key.
        self.flags(group='swift_storage', application_credential_id='ac',
                   application_credential_secret='s')
        swift.SwiftStorage(self.cfg.conf)

    def test_error_mapping(self):
        self.assertIsInstance(self.classify(self.client_error(401)).error,
                              exception.StorageError)
        self.assertIn('[swift_storage]',
                      str(self.classify(self.client_error(401)).error))
        self.assertIsInstance(self.classify(self.client_error(404)).error,
                              exception.NotFound)
        quota = self.classify(self.client_error(413, 'Upload exceeds quota.'))
        self.assertIsInstance(quota.error, exception.InsufficientSpace)
        self.assertTrue(self.classify(self.client_error(503)).transient)
        self.assertFalse(self.classify(self.client_error(403)).transient)

    def test_connection_errors_are_transient(self):
        for exc in (requests.exceptions.ConnectionError('reset'),
                    ConnectionResetError(104, 'reset'),
                    swift_exc.ClientException('Connection refused')):
            self.assertTrue(self.classify(exc).transient, exc)

    def test_keystone_errors(self):
        from keystoneauth1 import exceptions as ks
        self.assertIn('refused the credentials', str(self.classify(
            ks.Unauthorized()).error))
        self.assertTrue(self.classify(ks.ConnectFailure('down')).transient)
        self.assertIn('object-store endpoint', str(self.classify(
            ks.EndpointNotFound()).error))

    def test_keystone_session_application_credential(self):
        self.flags(group='swift_storage', application_credential_id='ac',
                   application_credential_secret='s', user=None, key=None)
        storage = swift.SwiftStorage(self.cfg.conf)
        auth = storage._keystone_session().auth
        self.assertEqual('ac', auth.auth_methods[0].application_credential_id)

    def test_locations(self):
        self.assertEqual('swift://osbackup/ctl/1/a', self.storage.location(
            'ctl/1/a'))
        self.assertEqual('ctl/1/a', self.storage.key_of(
            'swift://osbackup/ctl/1/a'))
        for bad in ('swift://other/ctl/1/a', 's3://osbackup/ctl/1/a',
                    'swift://osbackup/../x', 'swift://osbackup/'):
            self.assertRaises(exception.InvalidInput, self.storage.key_of,
                              bad)

    def test_upload_ids_carry_their_start_time(self):
        upload = swift.upload_id(now=1700000000.5)
        self.assertEqual(1700000000.0, swift.upload_started(upload))
        self.assertIsNone(swift.upload_started('junk'))


class S3Test(base.TestCase):

    def setUp(self):
        super().setUp()
        self.flags(group='s3_storage', endpoint_url='http://rgw:8080',
                   access_key='AK', secret_key='SK', bucket='backups',
                   part_size=5 * 1024 * 1024)
        self.storage = s3.S3Storage(self.cfg.conf)
        self.stubber = stub.Stubber(self.storage.client())
        self.stubber.activate()
        self.addCleanup(self.stubber.deactivate)

    def client_error(self, code, status):
        return boto.ClientError({'Error': {'Code': code, 'Message': code},
                                 'ResponseMetadata': {
                                     'HTTPStatusCode': status}}, 'PutObject')

    def classify(self, exc):
        return self.storage.classify(exc, 'Uploading s3://backups/k')

    def test_half_credentials_refused(self):
        self.flags(group='s3_storage', secret_key=None)
        error = self.assertRaises(exception.InvalidInput, s3.S3Storage,
                                  self.cfg.conf)
        self.assertIn('access_key and secret_key', str(error))

    def test_error_mapping(self):
        for code, status, cls, transient in (
                ('InvalidAccessKeyId', 403, exception.StorageError, False),
                ('AccessDenied', 403, exception.StorageError, False),
                ('NoSuchBucket', 404, exception.NotFound, False),
                ('NoSuchKey', 404, exception.NotFound, False),
                ('QuotaExceeded', 403, exception.InsufficientSpace, False),
                ('SlowDown', 503, exception.StorageError, True),
                ('InternalError', 500, exception.StorageError, True)):
            failure = self.classify(self.client_error(code, status))
            self.assertIs(cls, type(failure.error), code)
            self.assertEqual(transient, failure.transient, code)
        self.assertIn('refused the credentials', str(self.classify(
            self.client_error('SignatureDoesNotMatch', 403)).error))
        changed = self.classify(self.client_error('PreconditionFailed', 412))
        self.assertIsInstance(changed.error, exception.ArtifactCorrupt)
        self.assertFalse(changed.transient)
        self.assertIn('bucket backups does not exist', str(self.classify(
            self.client_error('NoSuchBucket', 404)).error))

    def test_connection_errors_are_transient(self):
        for exc in (boto.EndpointConnectionError(endpoint_url='http://x'),
                    boto.ReadTimeoutError(endpoint_url='http://x'),
                    boto.ConnectionClosedError(endpoint_url='http://x'),
                    boto.IncompleteReadError(actual_bytes=1,
                                             expected_bytes=2)):
            self.assertTrue(self.classify(exc).transient, exc)
        self.assertFalse(self.classify(boto.NoCredentialsError()).transient)

    def test_server_side_encryption_header(self):
        self.flags(group='s3_storage', server_side_encryption='aws:kms',
                   sse_kms_key_id='key-1')
        storage = s3.S3Storage(self.cfg.conf)
        stubber = stub.Stubber(storage.client())
        stubber.activate()
        self.addCleanup(stubber.deactivate)
        stubber.add_response('put_object', {'ETag': '"x"'}, {
            'Bucket': 'backups', 'Key': 'k', 'Body': b'data',
            'ContentMD5': stub.ANY, 'Metadata': stub.ANY,
            'ServerSideEncryption': 'aws:kms', 'SSEKMSKeyId': 'key-1'})
        storage.target('k').put_whole(b'data', 'ab' * 32, b'\0' * 16)
        stubber.assert_no_pending_responses()

    def test_lost_complete_reply_is_checked_not_failed(self):
        """A retried Complete that finds no upload: the first one did it."""
        self.storage.retrier.sleep = lambda s: None
        st = self.stubber
        st.add_response('create_multipart_upload', {'UploadId': 'u1'})
        upload = self.storage.target('k').begin()
        st.add_response('upload_part', {'ETag': '"p1"'})
        part = upload.put_part(1, b'x' * 10, b'\1' * 16)
        st.add_client_error('complete_multipart_upload', 'InternalError',
                            http_status_code=500)
        st.add_client_error('complete_multipart_upload', 'NoSuchUpload',
                            http_status_code=404)
        import hashlib
        etag = '%s-1' % hashlib.md5(b'\1' * 16).hexdigest()
        st.add_response('head_object', {'ETag': '"%s"' % etag})
        st.add_response('head_object', {'ETag': '"%s"' % etag})
        upload.complete([part], 'ab' * 32, 10)
        st.assert_no_pending_responses()

    def test_orphan_uploads_older_than_the_cutoff(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        self.stubber.add_response('list_multipart_uploads', {'Uploads': [
            {'Key': 'ctl/1/nova/a.tar.zst', 'UploadId': 'old',
             'Initiated': now - datetime.timedelta(days=2)},
            # Another program's, as old: never ours to abort.
            {'Key': 'photos/1/cats/a.jpg', 'UploadId': 'foreign',
             'Initiated': now - datetime.timedelta(days=2)},
            {'Key': 'ctl/1/nova/b.tar.zst', 'UploadId': 'young',
             'Initiated': now}]},
            {'Bucket': 'backups', 'Prefix': ''})
        self.stubber.add_response('abort_multipart_upload', {}, {
            'Bucket': 'backups', 'Key': 'ctl/1/nova/a.tar.zst',
            'UploadId': 'old'})
        removed = self.storage.cleanup_orphans()
        self.assertEqual(['s3://backups/ctl/1/nova/a.tar.zst (upload old)'],
                         removed)
        self.stubber.assert_no_pending_responses()

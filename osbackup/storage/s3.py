"""S3 storage: artifacts as objects in an S3 bucket (Ceph RGW, s3api, AWS).

boto3 does the requests, signed with ``[s3_storage] access_key`` /
``secret_key`` or, when unset, credentials of the standard AWS chain. An
artifact larger than ``part_size`` is a multipart upload of parts sent
``upload_concurrency`` at a time; CompleteMultipartUpload is the commit,
so a failed write is aborted (its parts dropped) and never visible. The
bucket may hold other data: osbackup only reads, deletes and aborts keys
under the prefixes it writes.

A single object records the sha256 of the stream as user metadata
(``x-amz-meta-osbackup-sha256``); a multipart one records its part size,
from which a reader recomputes the multipart ETag. Either is re-checked
at the end of every read.

Locations are ``s3://<bucket>/<key>``.
"""

from __future__ import annotations

import datetime

from oslo_log import log as logging

from osbackup import exception
from osbackup.storage import base
from osbackup.storage import objstore

LOG = logging.getLogger(__name__)

SCHEME = 's3:'
SHA256_META = 'osbackup-sha256'
PART_SIZE_META = 'osbackup-part-size'
MAX_PARTS = 10000
_CREDENTIAL_CODES = ('InvalidAccessKeyId', 'SignatureDoesNotMatch',
                     'InvalidToken', 'ExpiredToken',
                     'AuthorizationHeaderMalformed')
_TRANSIENT_CODES = ('SlowDown', 'InternalError', 'ServiceUnavailable',
                    'RequestTimeout', 'RequestTimeTooSkewed')


def _error_info(exc) -> tuple[int | None, str, str]:
    response = getattr(exc, 'response', None) or {}
    error = response.get('Error', {})
    status = response.get('ResponseMetadata', {}).get('HTTPStatusCode')
    code = str(error.get('Code', ''))
    if status is None and code.isdigit():
        status = int(code)
    return status, code, str(error.get('Message', '') or code)


class _S3Upload:
    """One multipart upload."""

    def __init__(self, storage: 'S3Storage', key: str):
        self.storage = storage
        self.key = key
        self.location = storage.location(key)
        reply = storage.call(
            'Starting the upload of %s' % self.location,
            storage.client().create_multipart_upload, Bucket=storage.bucket,
            Key=key, Metadata={PART_SIZE_META: str(storage.part_size)},
            **storage.sse_args())
        self.upload_id = reply['UploadId']
        self._digests = {}

    def put_part(self, number, data, md5):
        if number > MAX_PARTS:
            raise exception.StorageError(
                'Uploading %s: more than %d parts; raise [s3_storage] '
                'part_size' % (self.location, MAX_PARTS))
        reply = self.storage.call(
            'Uploading part %d of %s' % (number, self.location),
            self.storage.client().upload_part, Bucket=self.storage.bucket,
            Key=self.key, UploadId=self.upload_id, PartNumber=number,
            Body=data, ContentMD5=objstore.content_md5(md5))
        self._digests[number] = md5
        return {'PartNumber': number, 'ETag': reply['ETag']}

    def complete(self, parts, sha256, size):
        expected = objstore.s3_multipart_etag(
            [self._digests[p['PartNumber']] for p in parts])
        what = 'Committing %s (%d parts)' % (self.location, len(parts))
        try:
            self.storage.call(
                what, self.storage.client().complete_multipart_upload,
                Bucket=self.storage.bucket, Key=self.key,
                UploadId=self.upload_id, MultipartUpload={'Parts': parts})
        except exception.NotFound:
            # A retry after a reply lost on the way: the first attempt
            # completed the upload if the object is there as sent.
            if self.storage.etag(self.key) != expected:
                raise
        etag = self.storage.etag(self.key)
        if etag != expected:
            raise exception.ArtifactCorrupt(
                '%s: the store holds ETag %s, the parts sent make %s'
                % (what, etag, expected))

    def abort(self):
        try:
            self.storage.call(
                'Aborting the upload of %s' % self.location,
                self.storage.client().abort_multipart_upload,
                Bucket=self.storage.bucket, Key=self.key,
                UploadId=self.upload_id)
        except exception.NotFound:
            pass


class _S3Target(objstore.Target):
    def put_whole(self, data, sha256, md5):
        self.storage.call(
            'Uploading %s' % self.location, self.storage.client().put_object,
            Bucket=self.storage.bucket, Key=self.key, Body=data,
            ContentMD5=objstore.content_md5(md5),
            Metadata={SHA256_META: sha256}, **self.storage.sse_args())

    def begin(self):
        return _S3Upload(self.storage, self.key)


class S3Storage(objstore.ObjectStorage):
    """Artifacts in ``[s3_storage] bucket``."""

    name = 's3'
    scheme = SCHEME

    def __init__(self, conf, options=None):
        options = options if options is not None else conf.s3_storage
        super().__init__(conf, options, options.bucket, options.part_size,
                         options.upload_concurrency)
        self.bucket = options.bucket
        self._client = None
        if not self.bucket:
            raise exception.InvalidInput('[s3_storage] bucket is not set')
        if bool(options.access_key) != bool(options.secret_key):
            raise exception.InvalidInput(
                '[s3_storage] access_key and secret_key go together: set '
                'both, or neither to use the AWS credential chain')

    def client(self):
        """The boto3 S3 client (thread-safe, shared by the uploads)."""
        if self._client is None:
            import boto3
            from botocore import config as botocore_config
            o = self.options
            extra = {}
            if 'request_checksum_calculation' in \
                    botocore_config.Config.OPTION_DEFAULTS:
                # Newer botocore adds CRC trailers that many S3
                # implementations reject; Content-MD5 is what they share.
                extra = {'request_checksum_calculation': 'when_required',
                         'response_checksum_validation': 'when_required'}
            config = botocore_config.Config(
                region_name=o.region_name, signature_version='s3v4',
                s3={'addressing_style': o.addressing_style},
                # Retries are ours (objstore.Retrier).
                retries={'max_attempts': 1, 'mode': 'standard'},
                connect_timeout=o.timeout, read_timeout=o.timeout,
                max_pool_connections=o.upload_concurrency + 4, **extra)
            session = boto3.session.Session(
                aws_access_key_id=o.access_key or None,
                aws_secret_access_key=o.secret_key or None,
                region_name=o.region_name)
            verify = False if o.insecure else (o.cafile or None)
            self._client = session.client('s3', endpoint_url=o.endpoint_url,
                                          config=config, verify=verify)
        return self._client

    def sse_args(self) -> dict:
        o = self.options
        if not o.server_side_encryption:
            return {}
        args = {'ServerSideEncryption': o.server_side_encryption}
        if o.server_side_encryption == 'aws:kms' and o.sse_kms_key_id:
            args['SSEKMSKeyId'] = o.sse_kms_key_id
        return args

    def classify(self, exc, what):
        from botocore import exceptions as boto
        hint = '[s3_storage] access_key and secret_key (or the AWS ' \
            'credential chain)'
        if isinstance(exc, boto.ClientError):
            status, code, message = _error_info(exc)
            if code in _CREDENTIAL_CODES:
                status = 401
            if code == 'NoSuchBucket':
                return objstore.Failure(exception.NotFound(
                    '%s failed: the bucket %s does not exist'
                    % (what, self.bucket)))
            if status == 412:
                # Only reads resumed with If-Match ask for a precondition.
                return objstore.Failure(exception.ArtifactCorrupt(
                    '%s failed: the object changed in the store while it '
                    'was read' % what))
            if code in _TRANSIENT_CODES:
                return objstore.Failure(exception.StorageError(
                    '%s failed: %s (HTTP %s)' % (what, message, status)),
                    transient=True)
            return objstore.http_failure(
                status, what, message, hint,
                quota=code == 'QuotaExceeded' or 'quota' in
                message.lower())
        if isinstance(exc, (boto.NoCredentialsError,
                            boto.PartialCredentialsError)):
            return objstore.Failure(exception.StorageError(
                '%s failed: no S3 credentials; set %s' % (what, hint)))
        if isinstance(exc, boto.BotoCoreError) and not isinstance(
                exc, (boto.HTTPClientError, boto.ConnectionError,
                      boto.IncompleteReadError)):
            return objstore.Failure(exception.StorageError(
                '%s failed: %s' % (what, exc)))
        return objstore.connection_failure(what, exc)

    # -- bucket ------------------------------------------------------------

    def ensure_container(self):
        try:
            self.call('Checking the bucket %s' % self.bucket,
                      self.client().head_bucket, Bucket=self.bucket)
            return
        except exception.NotFound:
            pass
        args = {}
        if self.options.region_name and \
                self.options.region_name != 'us-east-1':
            args['CreateBucketConfiguration'] = {
                'LocationConstraint': self.options.region_name}
        LOG.info('Creating the S3 bucket %s', self.bucket)
        self.call('Creating the bucket %s (it is missing)' % self.bucket,
                  self.client().create_bucket, Bucket=self.bucket, **args)

    def target(self, key):
        return _S3Target(self, key)

    # -- reads -------------------------------------------------------------

    def fetch(self, key):
        def fetch(offset, etag):
            args = {}
            if offset:
                args['Range'] = 'bytes=%d-' % offset
            if etag:
                args['IfMatch'] = '"%s"' % etag
            reply = self.client().get_object(Bucket=self.bucket, Key=key,
                                             **args)
            size = int(reply.get('ContentLength', 0))
            crange = reply.get('ContentRange', '') or ''
            if crange.rpartition('/')[2].isdigit():
                size = int(crange.rpartition('/')[2])
            meta = reply.get('Metadata', {})
            etag = reply.get('ETag', '').strip('"')
            part_size = meta.get(PART_SIZE_META, '')
            info = objstore.ObjectInfo(
                size=size, etag=etag, sha256=meta.get(SHA256_META, ''),
                part_size=int(part_size) if part_size.isdigit() else 0,
                etag_kind='s3-multipart' if '-' in etag else 'md5')
            return info, reply['Body']
        return fetch

    def etag(self, key: str) -> str | None:
        try:
            reply = self.call('Checking %s' % self.location(key),
                              self.client().head_object, Bucket=self.bucket,
                              Key=key)
        except exception.NotFound:
            return None
        return reply.get('ETag', '').strip('"')

    # -- the rest of the Storage API ---------------------------------------

    def delete(self, location):
        key = self.key_of(location)
        try:
            self.call('Deleting %s' % location, self.client().delete_object,
                      Bucket=self.bucket, Key=key)
        except exception.NotFound:
            pass

    def exists(self, location):
        return self.etag(self.key_of(location)) is not None

    def list(self, prefix=''):
        """The bucket's objects under ``prefix``, a page at a time.

        ListObjectsV2 with its ContinuationToken; uploads not completed
        are not objects yet and are never listed.
        """
        args = {'Bucket': self.bucket, 'Prefix': prefix,
                'MaxKeys': self.list_page}
        while True:
            try:
                page = self.call('Listing %s' % self.location(prefix),
                                 self.client().list_objects_v2, **args)
            except exception.NotFound:
                raise exception.StorageError(
                    'Cannot list %s: the bucket %s does not exist'
                    % (self.location(prefix), self.bucket))
            for item in page.get('Contents', []):
                yield base.StoredObject(self.location(item['Key']),
                                        int(item['Size']),
                                        item['LastModified'].timestamp())
            token = page.get('NextContinuationToken')
            if not page.get('IsTruncated') or not token:
                return
            args['ContinuationToken'] = token

    def remove_orphans(self, prefix, before):
        """Abort the multipart uploads under ``prefix`` started before."""
        removed = []
        paginator = self.client().get_paginator('list_multipart_uploads')
        pages = self.call('Listing the unfinished uploads in %s'
                          % self.bucket, lambda: list(paginator.paginate(
                              Bucket=self.bucket, Prefix=prefix)))
        cutoff = None if before == float('inf') else \
            datetime.datetime.fromtimestamp(before, datetime.timezone.utc)
        for page in pages:
            for upload in page.get('Uploads', []):
                if not base.ours(upload['Key']):
                    continue    # another program's upload
                started = upload.get('Initiated')
                if started is not None and started.tzinfo is None:
                    started = started.replace(tzinfo=datetime.timezone.utc)
                if cutoff is not None and started is not None and \
                        started >= cutoff:
                    continue
                try:
                    self.call('Aborting the upload of %s'
                              % self.location(upload['Key']),
                              self.client().abort_multipart_upload,
                              Bucket=self.bucket, Key=upload['Key'],
                              UploadId=upload['UploadId'])
                except exception.NotFound:
                    pass
                removed.append('%s (upload %s)' % (
                    self.location(upload['Key']), upload['UploadId']))
        return removed

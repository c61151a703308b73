"""[s3_storage] options: the s3 backend, artifacts in an S3 bucket."""

from oslo_config import cfg

from osbackup.conf import storage

s3_storage_group = cfg.OptGroup(
    's3_storage', title='S3 storage backend',
    help='Object storage through the S3 API ([storage] backend = s3): '
         'Ceph RGW, Swift\'s s3api, or a public cloud. Objects larger '
         'than part_size are multipart uploads, visible only once '
         'CompleteMultipartUpload succeeded.')

s3_storage_opts = [
    cfg.URIOpt('endpoint_url',
               help='S3 endpoint, e.g. https://rgw.example.net:8080. '
                    'Unset: AWS\'s endpoint for region_name.'),
    cfg.StrOpt('region_name', default='us-east-1',
               help='Region the requests are signed for.'),
    cfg.StrOpt('access_key',
               help='Access key id. Unset: the standard AWS credential '
                    'chain (AWS_ACCESS_KEY_ID, ~/.aws/credentials, '
                    'instance metadata, ...).'),
    cfg.StrOpt('secret_key', secret=True,
               help='Secret access key of access_key.'),
    cfg.StrOpt('bucket', default='osbackup',
               help='Bucket of this deployment\'s artifacts; created on '
                    'first use when the credentials allow it. It may hold '
                    'other data: osbackup only touches the keys it wrote.'),
    cfg.StrOpt('addressing_style', default='auto',
               choices=['auto', 'path', 'virtual'],
               help='How the bucket is addressed. path: '
                    'https://endpoint/bucket/key (most Ceph RGW and '
                    's3api setups); virtual: https://bucket.endpoint/key; '
                    'auto: virtual where the bucket name allows it.'),
    cfg.IntOpt('part_size', default=64 * 1024 * 1024,
               min=5 * 1024 * 1024, max=5 * 1024 * 1024 * 1024,
               help='Bytes per part. Larger objects are multipart uploads '
                    'in parts of this size, upload_concurrency at a time; '
                    'memory per upload is about part_size x '
                    '(upload_concurrency + 1). 10000 parts is the S3 limit '
                    'on one object.'),
    cfg.IntOpt('upload_concurrency', default=4, min=1, max=32,
               help='Parts of one object uploaded at the same time.'),
    cfg.StrOpt('server_side_encryption',
               choices=['AES256', 'aws:kms'],
               help='Ask the server to encrypt objects at rest (the '
                    'x-amz-server-side-encryption header). Independent of '
                    '[storage] encryption_key_file, which encrypts before '
                    'upload.'),
    cfg.StrOpt('sse_kms_key_id',
               help='KMS key of server_side_encryption = aws:kms. Unset: '
                    'the bucket\'s default key.'),
] + storage.object_store_opts


def register_opts(conf):
    conf.register_group(s3_storage_group)
    conf.register_opts(s3_storage_opts, group=s3_storage_group)


def list_opts():
    return {s3_storage_group: s3_storage_opts}

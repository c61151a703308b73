"""[swift_storage] options: the swift backend, artifacts in OpenStack Swift."""

from oslo_config import cfg

from osbackup.conf import storage

swift_storage_group = cfg.OptGroup(
    'swift_storage', title='Swift storage backend',
    help='Object storage in OpenStack Swift ([storage] backend = swift). '
         'Artifacts are objects in one container per deployment; those '
         'larger than segment_size are Static Large Objects whose '
         'segments live in the container <container>_segments. The '
         'manifest is written last, so an artifact is visible only once '
         'complete.')

swift_storage_opts = [
    cfg.URIOpt('auth_url',
               help='Identity endpoint: the Keystone URL (e.g. '
                    'https://keystone.example.net:5000/v3) with '
                    'auth_version 3, or the tempauth URL (e.g. '
                    'http://127.0.0.1:8080/auth/v1.0) with auth_version 1.'),
    cfg.IntOpt('auth_version', default=3, choices=[1, 3],
               help='Identity protocol. 3: Keystone v3 (password or '
                    'application credential) through a keystoneauth1 '
                    'session; 1: the v1 protocol of tempauth/swauth test '
                    'clusters.'),
    cfg.StrOpt('user',
               help='User name (auth_version 3) or account:user '
                    '(auth_version 1).'),
    cfg.StrOpt('key', secret=True,
               help='Password of user (or the tempauth key).'),
    cfg.StrOpt('project_name',
               help='Project whose Swift account holds the container '
                    '(auth_version 3 with a password).'),
    cfg.StrOpt('user_domain_name', default='Default',
               help='Domain of user (auth_version 3).'),
    cfg.StrOpt('project_domain_name', default='Default',
               help='Domain of project_name (auth_version 3).'),
    cfg.StrOpt('application_credential_id',
               help='Keystone application credential to log in with '
                    'instead of user/key (auth_version 3).'),
    cfg.StrOpt('application_credential_secret', secret=True,
               help='Secret of application_credential_id.'),
    cfg.StrOpt('region_name',
               help='Region of the object-store endpoint in the Keystone '
                    'catalogue (auth_version 3). Unset: the only one.'),
    cfg.StrOpt('interface', default='public',
               choices=['public', 'internal', 'admin'],
               help='Endpoint interface of the object-store service in the '
                    'Keystone catalogue (auth_version 3).'),
    cfg.StrOpt('container', default='osbackup',
               help='Container of this deployment\'s artifacts; created on '
                    'first use when the credentials allow it. Segments of '
                    'large objects go to <container>_segments.'),
    cfg.StrOpt('storage_policy',
               help='Storage policy of the containers when osbackup creates '
                    'them (e.g. an erasure-coded or a remote-region policy). '
                    'Unset: the cluster\'s default policy.'),
    cfg.IntOpt('segment_size', default=128 * 1024 * 1024,
               min=1024 * 1024,
               help='Bytes per segment. Larger objects are uploaded as '
                    'Static Large Objects in segments of this size, '
                    'segment_concurrency at a time; memory per upload is '
                    'about segment_size x (segment_concurrency + 1). The '
                    'cluster\'s max_manifest_segments (1000 by default) '
                    'times this is the largest artifact.'),
    cfg.IntOpt('segment_concurrency', default=2, min=1, max=32,
               help='Segments of one object uploaded at the same time.'),
] + storage.object_store_opts


def register_opts(conf):
    conf.register_group(swift_storage_group)
    conf.register_opts(swift_storage_opts, group=swift_storage_group)


def list_opts():
    return {swift_storage_group: swift_storage_opts}

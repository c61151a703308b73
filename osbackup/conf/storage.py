"""[storage] options: where artifacts are written and how."""

from oslo_config import cfg

storage_group = cfg.OptGroup('storage', title='Artifact storage')

storage_opts = [
    cfg.StrOpt('backend', default='local',
               help='The default target: a storage backend (an '
                    'osbackup.storage entry point: local, ssh, swift, s3) '
                    'configured by its own group ([storage] local_path, '
                    '[ssh_storage], [swift_storage], [s3_storage]), or one '
                    'of the named targets.'),
    cfg.ListOpt('targets', default=[],
                help='Named storage targets, e.g. "offsite,dr", so that '
                     'one cloud can copy to two regions or two buckets of '
                     'the same kind. Each name has a group of its own '
                     'holding "backend = local|ssh|swift|s3" and the options '
                     'of that backend ([offsite] backend = swift, auth_url '
                     '= ..., container = ...). The names are what "--target" '
                     'takes, beside the backend names that stand for the '
                     'single-target options above.'),
    cfg.StrOpt('local_path', default='$state_path/backups',
               help='Directory of the local backend; may be an NFS mount '
                    'shared by all nodes. Created 0700.'),
    cfg.StrOpt('encryption_key_file',
               help='File holding the key that encrypts artifacts at rest '
                    '(AES-256-GCM in authenticated 1 MiB chunks; encrypted '
                    'objects get a .enc suffix). Unset: artifacts are '
                    'stored unencrypted, which is only safe on storage no '
                    'one else can read: they hold database passwords and '
                    'fernet keys. Every node that writes or restores '
                    'artifacts needs the same key; create it with "openssl '
                    'rand -hex 32 > /etc/osbackup/storage.key" (chmod 600) '
                    'and keep a copy away from the backups, since nothing '
                    'can be restored without it. Artifacts written before '
                    'the key was set stay readable.'),
    cfg.StrOpt('record_key_file',
               help='File holding the key that authenticates the records '
                    'each backup writes beside its artifacts on every '
                    'target (HMAC-SHA256 over the record\'s canonical '
                    'JSON), which "osbackup-manage catalogue rebuild" and '
                    '"backup check --dr" read back. Unset: the key in '
                    'encryption_key_file (a subkey derived from it, never '
                    'the encryption key itself). With neither set, records '
                    'are written unauthenticated and a rebuild accepts them '
                    'only where no key is configured either. Never the '
                    'transport credentials: keep a copy of this file away '
                    'from the controllers, with the configuration.'),
    cfg.StrOpt('deployment_id',
               help='Name of this deployment in its storage records, so '
                    'that a rebuild refuses the records of another cloud '
                    'that shares the same storage. Unset: the key id of '
                    'the record key (see record_key_file), which differs '
                    'between deployments with different keys.'),
    cfg.IntOpt('leftover_age', default=24 * 3600, min=0,
               help='Seconds after which prune removes what interrupted '
                    'writes left on a target: partial files of the local '
                    'and ssh backends, Swift segments no manifest names, '
                    'unfinished S3 multipart uploads. Younger ones may '
                    'belong to a write still running. Only names of '
                    'osbackup\'s own layout are touched, so a bucket or '
                    'container may hold other data.'),
    cfg.IntOpt('orphan_age', default=7 * 24 * 3600, min=0,
               help='Seconds a complete object without a catalogue row '
                    '(an orphan, e.g. a backup whose late report was lost '
                    'or a catalogue restored from an older dump) must be '
                    'old before "backup prune --delete-orphans" removes '
                    'it. Orphans are reported by "backup verify" and '
                    '"backup prune" but never deleted without that flag: '
                    '"catalogue rebuild" may import them back.'),
    cfg.IntOpt('compression_level', default=3, min=1, max=22,
               help='Compression level (zstd) of archives and dumps.'),
    cfg.IntOpt('compression_threads', default=0, min=-1,
               help='Compression threads (zstd): 0 compresses in the calling '
                    'thread, -1 uses one per CPU, N uses N.'),
]


# The connection options every object-store backend ([swift_storage],
# [s3_storage]) has, with one meaning.
object_store_opts = [
    cfg.StrOpt('cafile',
               help='CA bundle that verifies the TLS certificates of the '
                    'object store (and of Keystone). Unset: the system\'s.'),
    cfg.BoolOpt('insecure', default=False,
                help='Do not verify TLS certificates (test setups only).'),
    cfg.IntOpt('retries', default=5, min=0,
               help='Retries of a request that failed with a 5xx status, a '
                    'timeout or a broken connection, with exponential '
                    'back-off from 1 s up to 30 s. Only the failed request '
                    '(one part or segment, or a read from where it broke) '
                    'is sent again.'),
    cfg.IntOpt('timeout', default=60, min=1,
               help='Seconds to wait for a connection or an answer.'),
]


def register_opts(conf):
    conf.register_group(storage_group)
    conf.register_opts(storage_opts, group=storage_group)


def list_opts():
    return {storage_group: storage_opts}

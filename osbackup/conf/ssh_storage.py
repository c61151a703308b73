"""[ssh_storage] options: the ssh backend, artifacts on a backup server."""

from oslo_config import cfg

ssh_storage_group = cfg.OptGroup(
    'ssh_storage', title='SSH storage backend',
    help='Off-site storage ([storage] backend = ssh): artifacts stream '
         'over ssh to a backup server. The account there needs a POSIX '
         'login shell whose startup files print nothing, and cat, mkdir, '
         'mv, rm, rmdir, sync, df and find. Only key authentication is '
         'used (BatchMode): ssh never prompts.')

ssh_storage_opts = [
    cfg.StrOpt('destination',
               help='Where artifacts go, as user@host:/absolute/path on the '
                    'backup server (an IPv6 host in brackets). Directories '
                    'below it are created 0700 and artifacts 0600.'),
    cfg.PortOpt('port', default=22,
                help='TCP port of the ssh server.'),
    cfg.StrOpt('identity_file',
               help='Private key that logs in to the backup server; it must '
                    'have no passphrase. Unset: ssh\'s default keys.'),
    cfg.StrOpt('known_hosts_file',
               help='Known hosts file holding the backup server\'s host key. '
                    'Unset: ssh\'s default (~/.ssh/known_hosts of the user '
                    'running osbackup).'),
    cfg.BoolOpt('strict_host_key_checking', default=True,
                help='Refuse to connect unless the server\'s host key is '
                     'already known. Turning this off trusts whatever '
                     'answers on the network.'),
    cfg.IntOpt('connect_timeout', default=10, min=1,
               help='Seconds to wait for the ssh connection; also the '
                    'interval of the keepalives that detect a dead '
                    'connection during transfers.'),
    cfg.StrOpt('ssh_path', default='ssh',
               help='The OpenSSH client executable.'),
]


def register_opts(conf):
    conf.register_group(ssh_storage_group)
    conf.register_opts(ssh_storage_opts, group=ssh_storage_group)


def list_opts():
    return {ssh_storage_group: ssh_storage_opts}

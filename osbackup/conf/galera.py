"""[galera] options: restoring and recovering a Galera cluster."""

from oslo_config import cfg

galera_group = cfg.OptGroup(
    'galera', title='Galera cluster restore and recovery',
    help='How an agent starts its Galera member as the first of a new '
         'cluster, and how long it waits for the cluster to form. The '
         'server itself is stopped and started as the units in [mysql] '
         'units.')

galera_opts = [
    cfg.StrOpt('bootstrap_command', default='galera_new_cluster',
               help='Command that starts this member as the first node of '
                    'a new cluster (instead of starting its [mysql] '
                    'units), split into words like a shell would (no '
                    'shell is run). It runs on the member a physical '
                    'restore restored, or that "osbackup-manage cluster '
                    'recover" found with the highest seqno, once its '
                    'data directory is marked safe_to_bootstrap.'),
    cfg.StrOpt('server_command', default='mariadbd --user=mysql',
               help='The server\'s command line, as its unit runs it '
                    '(its option files decide where its logs are): '
                    '"osbackup-manage cluster recover" runs it with '
                    '--wsrep-recover on a member whose grastate.dat has no '
                    'seqno (a crash) to read its last committed position.'),
    cfg.IntOpt('bootstrap_timeout', default=300, min=1,
               help='Seconds the bootstrap command may take.'),
    cfg.IntOpt('sync_timeout', default=1800, min=1,
               help='Seconds a member waits, after it started, until it '
                    'is Synced in a cluster of all the members (a joiner '
                    'copies the whole data set from a donor by SST, which '
                    'takes as long as a physical backup of it). Past it '
                    'the restore fails and rolls back.'),
    cfg.IntOpt('rejoin_attempts', default=5, min=1,
               help='Times a member starts its units until it is Synced '
                    'in the cluster it joins: in a restore or a recovery '
                    'a state transfer (SST, IST) that failed is tried '
                    'again from the start; in a rollback the member '
                    'bootstrapping the old cluster may not be up yet. '
                    'The member\'s server is stopped between attempts. '
                    'Past the last attempt the restore fails and rolls '
                    'back.'),
]


def register_opts(conf):
    conf.register_group(galera_group)
    conf.register_opts(galera_opts, group=galera_group)


def list_opts():
    return {galera_group: galera_opts}

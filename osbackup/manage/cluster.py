"""``osbackup-manage cluster``: Galera clusters after an outage."""

import sys

from osbackup import manage
from osbackup.manage import output
from osbackup.manage import restores
from osbackup.manage import waiting
from osbackup import states


class ClusterCommands:
    """Galera clusters: start one again after a full outage."""

    def __init__(self, env):
        self.env = env

    @manage.args('--dry-run', action='store_true',
                 help='Print the steps and hosts and change nothing.')
    @manage.format_arg
    def recover(self, dry_run=False, fmt='table'):
        """Start a Galera cluster whose members are all down again.

        Every member stops what is left of its server and reads its last
        committed position (grastate.dat, else mariadbd --wsrep-recover);
        the one with the highest seqno starts a new cluster, the others
        rejoin it, and each waits until it is Synced. Runs as a restore
        (see "restore show") and waits for its end.
        """
        restore = self.env.call('recover_cluster', dry_run=dry_run)
        if not dry_run:
            print('Cluster recovery %s started' % restore['id'],
                  file=sys.stderr)
            restore = waiting.wait(
                lambda: self.env.catalogue.get_restore(restore['id']))
        if fmt == 'json':
            output.emit_json(restores.public(restore))
        else:
            restores.print_restore(restore)
        if dry_run or restore['status'] == states.SUCCEEDED:
            return manage.EXIT_OK
        return manage.EXIT_FAILED

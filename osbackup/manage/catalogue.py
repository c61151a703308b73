"""``osbackup-manage catalogue rebuild``: the catalogue, back from storage.

The work is osbackup/rebuild.py's; see there what is imported and what
is refused.
"""

from osbackup import exception
from osbackup import manage
from osbackup.manage import output


class CatalogueCommands:
    """The catalogue, rebuilt from what storage holds."""

    def __init__(self, env):
        self.env = env

    @manage.args('--target', dest='targets', action='append', default=[],
                 metavar='TARGET',
                 help='Read the records of this storage target '
                      '(repeatable). Default: [storage] backend and every '
                      'target in [storage] targets.')
    @manage.args('--dry-run', action='store_true',
                 help='Read and check every record; change nothing.')
    @manage.format_arg
    def rebuild(self, targets=None, dry_run=False, fmt='table'):
        """Recreate backups, artifacts, copies and chains from storage."""
        conf = self.env.conf
        # Loaded here: the rest of osbackup-manage needs no storage code.
        from osbackup import rebuild
        from osbackup import storage as storage_mod
        for name in targets or []:
            if name not in storage_mod.target_names(conf):
                raise exception.InvalidInput(
                    'Unknown target %r (known: %s)' % (
                        name, ', '.join(storage_mod.target_names(conf))))
        summary = rebuild.rebuild(conf, self.env.catalogue, targets,
                                  dry_run)
        if fmt == 'json':
            output.emit_json(summary)
        else:
            print('%s %d backup(s); %d already in the catalogue'
                  % ('Would import' if dry_run else 'Imported',
                     summary['imported'], summary['existing']))
            for kind in ('incomplete', 'rejected'):
                for entry in summary[kind]:
                    print('%s: %s: %s' % (kind.upper(), entry['record'],
                                          entry['reason']))
        return manage.EXIT_OK if not (summary['incomplete'] or
                                      summary['rejected']) \
            else manage.EXIT_FAILED

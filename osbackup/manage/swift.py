"""``osbackup-manage swift``: swift's rings on every swift node."""

from osbackup import manage
from osbackup.manage import output
from osbackup.manage import waiting
from osbackup import states


class SwiftCommands:
    """Swift ring and builder files."""

    def __init__(self, env):
        self.env = env

    @manage.args('--backup', dest='backup_id', type=int, metavar='ID',
                 help='Take the rings from this backup. Default: the newest '
                      'good backup with swift.')
    @manage.format_arg
    def distribute_rings(self, backup_id=None, fmt='table'):
        """Copy ring and builder files to every agent that hosts swift."""
        job = self.env.call('distribute_rings', backup_id=backup_id)

        def fetch():
            tasks = self.env.catalogue.get_tasks(job['tasks'])
            done = all(t['status'] in states.TASK_DONE for t in tasks)
            return {'status': states.SUCCEEDED if done else states.RUNNING,
                    'tasks': tasks}
        result = waiting.wait(fetch)
        hosts = [{'host': t['host'], 'status': t['status'],
                  'error': t['error'],
                  'files': (t['result'] or {}).get('files', [])}
                 for t in result['tasks']]
        if fmt == 'json':
            output.emit_json({'backup_id': job['backup_id'],
                              'rings': job['rings'], 'hosts': hosts})
        else:
            print('Rings from backup %s (%s)' % (job['backup_id'],
                                                 ', '.join(job['rings'])))
            output.table(hosts, [
                ('Host', 'host'), ('Status', 'status'),
                ('Files', lambda h: ', '.join(
                    '%s %s' % (f['path'], f['sha256'][:12])
                    for f in h['files']) or None), ('Error', 'error')])
        good = all(h['status'] == states.SUCCEEDED for h in hosts)
        return manage.EXIT_OK if good else manage.EXIT_FAILED

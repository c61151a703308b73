"""systemd: ``systemctl stop/start/is-active`` with timeouts."""

from osbackup.unit_managers import base

# systemctl waits for the unit's own stop/start timeout; ours is a bound
# on top of it so a hung unit fails the step instead of the whole restore.
TIMEOUT = 300


class SystemdManager(base.UnitManager):
    name = 'systemd'

    def _run(self, *args, timeout=TIMEOUT):
        argv = ['systemctl'] + list(args)
        return base.run(argv, timeout, ' '.join(argv))

    def exists(self, unit):
        proc = self._run('show', '--property=LoadState', '--value', unit,
                         timeout=30)
        return proc.returncode == 0 and proc.stdout.strip() not in (
            'not-found', '')

    def start(self, unit):
        base.check(self._run('start', unit), 'systemctl start %s' % unit)

    def stop(self, unit):
        base.check(self._run('stop', unit), 'systemctl stop %s' % unit)

    def is_active(self, unit):
        return self._run('is-active', '--quiet', unit,
                         timeout=30).returncode == 0

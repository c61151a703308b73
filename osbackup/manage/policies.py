"""``osbackup-manage policy``: schedules, retention and copy targets."""

from osbackup.conductor import policies
from osbackup import manage
from osbackup.manage import output

_SHOW = ['name', 'enabled', 'schedule', 'hosts', 'services', 'targets',
         'keep_days', 'keep_last', 'keep_daily', 'keep_weekly',
         'keep_monthly', 'verify_schedule', 'verify_deep',
         'distribute_rings', 'next_run_at', 'next_verify_at']


def _policy_args(func, create):
    """The options shared by create and update."""
    req = {'required': True} if create else {}
    for flags, kwargs in reversed([
        (('--schedule',), dict(metavar='CRON', help='When to back up, in '
                               'cron syntax, e.g. "0 2 * * *".', **req)),
        (('--keep-days',), dict(type=int, metavar='N', help='Keep backups '
                                'of the last N days.')),
        (('--keep-last',), dict(type=int, metavar='N', help='Keep the last '
                                'N good backups.')),
        (('--keep-daily',), dict(type=int, metavar='N', help='Keep the '
                                 'newest good backup of each of the last N '
                                 'days that have one.')),
        (('--keep-weekly',), dict(type=int, metavar='N', help='Same, per '
                                  'ISO week.')),
        (('--keep-monthly',), dict(type=int, metavar='N', help='Same, per '
                                   'calendar month.')),
        (('--service',), dict(dest='services', action='append',
                              metavar='SERVICE', help='Back up this service '
                              '(repeatable). Default: all.')),
        (('--host',), dict(dest='hosts', action='append', metavar='HOST',
                           help='Back up this host (repeatable). Default: '
                           'every agent that is up.')),
        (('--target',), dict(dest='targets', action='append',
                             metavar='TARGET', help='Storage target '
                             '(repeatable; the first is written, the '
                             'others get verified copies), e.g. local, '
                             'ssh. Default: [storage] backend.')),
        (('--verify-schedule',), dict(metavar='CRON', help='When to verify '
                                      'the newest backup of this policy.')),
        (('--verify-deep',), dict(action='store_true', default=None,
                                  help='Scheduled verifications also unpack '
                                  'archives and load dumps into a scratch '
                                  'schema.')),
        (('--distribute-rings',), dict(action='store_true', default=None,
                                       help='After each good backup, copy '
                                       'swift rings to every swift node.')),
    ]):
        func = manage.args(*flags, **kwargs)(func)
    return func


def _values(**kw):
    return {k: v for k, v in kw.items() if v is not None}


class PolicyCommands:
    """Backup policies run by the conductor."""

    def __init__(self, env):
        self.env = env

    def _targets(self):
        # stevedore and the storage drivers load only for this.
        from osbackup import storage as storage_mod
        return storage_mod.target_names(self.env.conf)

    def _print(self, policy, fmt):
        if fmt == 'json':
            output.emit_json(policy)
        else:
            output.fields(policy, _SHOW)

    @manage.args('policy_name', metavar='NAME', help='Name of the policy.')
    @manage.format_arg
    def create(self, policy_name, schedule=None, keep_days=None,
               keep_last=None,
               keep_daily=None, keep_weekly=None, keep_monthly=None,
               services=None, hosts=None, targets=None, verify_schedule=None,
               verify_deep=None, distribute_rings=None, fmt='table'):
        """Create a policy; the conductor runs it when it is due."""
        values = _values(
            name=policy_name, schedule=schedule, keep_days=keep_days,
            keep_last=keep_last, keep_daily=keep_daily,
            keep_weekly=keep_weekly, keep_monthly=keep_monthly,
            verify_schedule=verify_schedule,
            verify_deep=bool(verify_deep),
            distribute_rings=bool(distribute_rings))
        for key in policies.RETENTION_KEYS:
            values.setdefault(key, 0)
        values.update(services=services or [], hosts=hosts or [],
                      targets=targets or [self.env.conf.storage.backend])
        values = policies.validate(values, self._targets())
        self._print(self.env.catalogue.create_policy(values), fmt)
        return manage.EXIT_OK

    @manage.args('policy_name', metavar='NAME', help='Name of the policy.')
    @manage.args('--enable', dest='enabled', action='store_true',
                 default=None, help='Run the policy again.')
    @manage.args('--disable', dest='disabled', action='store_true',
                 default=None, help='Stop running the policy.')
    @manage.format_arg
    def update(self, policy_name, schedule=None, keep_days=None,
               keep_last=None,
               keep_daily=None, keep_weekly=None, keep_monthly=None,
               services=None, hosts=None, targets=None, verify_schedule=None,
               verify_deep=None, distribute_rings=None, enabled=None,
               disabled=None, fmt='table'):
        """Change a policy; unchanged options keep their values."""
        current = self.env.catalogue.get_policy(policy_name)
        values = _values(
            schedule=schedule, keep_days=keep_days, keep_last=keep_last,
            keep_daily=keep_daily, keep_weekly=keep_weekly,
            keep_monthly=keep_monthly, services=services, hosts=hosts,
            targets=targets, verify_schedule=verify_schedule,
            verify_deep=verify_deep, distribute_rings=distribute_rings)
        if enabled:
            values['enabled'] = True
        if disabled:
            values['enabled'] = False
        merged = {k: values.get(k, current[k])
                  for k in policies.RETENTION_KEYS}
        policies.validate(dict(values, **merged), self._targets())
        if 'schedule' in values:
            values['next_run_at'] = None    # rescheduled on the next check
        if 'verify_schedule' in values:
            values['next_verify_at'] = None
        self._print(self.env.catalogue.update_policy(policy_name, values),
                    fmt)
        return manage.EXIT_OK

    @manage.format_arg
    def list(self, fmt='table'):
        """List policies."""
        found = self.env.catalogue.list_policies()
        if fmt == 'json':
            output.emit_json(found)
        else:
            output.table(found, [
                ('Name', 'name'), ('Enabled', 'enabled'),
                ('Schedule', 'schedule'),
                ('Keep', lambda p: ', '.join(
                    '%s=%s' % (k[5:], p[k]) for k in policies.RETENTION_KEYS
                    if p[k]) or None),
                ('Services', lambda p: p['services'] or 'all'),
                ('Hosts', lambda p: p['hosts'] or 'all'),
                ('Targets', 'targets'), ('Next run', 'next_run_at')])
        return manage.EXIT_OK

    @manage.args('policy_name', metavar='NAME', help='Name of the policy.')
    @manage.format_arg
    def show(self, policy_name, fmt='table'):
        """Show a policy."""
        self._print(self.env.catalogue.get_policy(policy_name), fmt)
        return manage.EXIT_OK

    @manage.args('policy_name', metavar='NAME', help='Name of the policy.')
    def delete(self, policy_name):
        """Delete a policy (its backups stay until deleted or pruned)."""
        self.env.catalogue.delete_policy(policy_name)
        print('Policy %s deleted' % policy_name)
        return manage.EXIT_OK


for _action in ('create', 'update'):
    setattr(PolicyCommands, _action, _policy_args(
        getattr(PolicyCommands, _action), create=_action == 'create'))

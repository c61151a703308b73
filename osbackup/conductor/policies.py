"""Policies: what to back up, when, where to, how long to keep it.

The conductor runs due policies itself (no cron): each periodic check
claims due runs in the catalogue with compare-and-set, so with several
conductors every run happens once. Schedules are cron expressions in
``[conductor] timezone``.
"""

from oslo_log import log as logging

from osbackup.conductor import retention
from osbackup.conductor import schedule
from osbackup.db import rows
from osbackup import exception

LOG = logging.getLogger(__name__)

RETENTION_KEYS = ('keep_days', 'keep_last', 'keep_daily', 'keep_weekly',
                  'keep_monthly')


def validate(values: dict, known_targets: list) -> dict:
    """Check a policy's fields; raise InvalidInput with a clear message."""
    out = dict(values)
    if 'schedule' in out:
        out['schedule'] = schedule.validate(out['schedule'])
    if out.get('verify_schedule'):
        out['verify_schedule'] = schedule.validate(out['verify_schedule'])
    if any(k in out for k in RETENTION_KEYS):
        retention.Rules(**{k: out.get(k, 0) for k in RETENTION_KEYS}
                        ).validate()
    for target in out.get('targets') or []:
        if target not in known_targets:
            raise exception.InvalidInput(
                'Unknown storage target %r (known: %s)'
                % (target, ', '.join(known_targets)))
    return out


class PolicyRunner:
    """Start due backups and verifications of every enabled policy."""

    def __init__(self, conf, catalogue, backups, verifications):
        self.conf = conf
        self.catalogue = catalogue
        self.backups = backups
        self.verifications = verifications

    def _next(self, field):
        tz = self.conf.conductor.timezone

        def following(policy):
            expr = policy[field]
            if not expr:
                return None
            return schedule.next_run(expr, rows.now(), tz)
        return following

    def run_now(self, name: str, hosts=None, services=None,
                targets=None, full: bool = False) -> dict:
        """Run a policy's backup now (what the schedule would start)."""
        policy = self.catalogue.get_policy(name)
        return self.backups.create(hosts or policy['hosts'],
                                   services or policy['services'],
                                   policy=name,
                                   targets=targets or policy['targets'],
                                   full=full)

    def run_due(self) -> None:
        now = rows.now()
        for policy in self.catalogue.claim_due('next_run_at', now,
                                               self._next('schedule')):
            LOG.info('Policy %s is due: starting its backup', policy['name'])
            try:
                self.backups.create(policy['hosts'], policy['services'],
                                    policy=policy['name'],
                                    targets=policy['targets'])
            except exception.OsbackupError as exc:
                LOG.error('Policy %s could not start its backup: %s',
                          policy['name'], exc.message)
        for policy in self.catalogue.claim_due('next_verify_at', now,
                                               self._next('verify_schedule')):
            backup = self.catalogue.newest_policy_backup(policy['name'])
            if backup is None:
                continue
            LOG.info('Policy %s: verifying backup %s', policy['name'],
                     backup)
            try:
                self.verifications.create(backup, policy['verify_deep'])
            except exception.OsbackupError as exc:
                LOG.error('Policy %s could not verify backup %s: %s',
                          policy['name'], backup, exc.message)

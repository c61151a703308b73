"""``osbackup-manage backup check``: a Nagios/Icinga plugin of freshness.

Reads the catalogue only (no broker, no conductor), so it answers while
the conductor is down. Exit codes are the plugin convention: 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN (the catalogue cannot be read).
"""

from oslo_log import log as logging

from osbackup import exception
from osbackup import freshness
from osbackup import manage
from osbackup.manage import binlogs
from osbackup.manage import output

LOG = logging.getLogger(__name__)

DEFAULT_WARNING = '26h'
DEFAULT_CRITICAL = '48h'


def limits_from(max_age=None, warning=None, critical=None,
                verified_within=None) -> freshness.Thresholds:
    """Thresholds from the command line; ``--max-age`` is both at once."""
    if max_age is not None and (warning is not None or
                                critical is not None):
        raise exception.InvalidInput(
            'Give either --max-age or --warning/--critical, not both')
    if max_age is not None:
        warning = critical = max_age
    warn = freshness.parse_duration(warning or DEFAULT_WARNING)
    if critical is None:
        crit = max(warn, freshness.parse_duration(DEFAULT_CRITICAL))
    else:
        crit = freshness.parse_duration(critical)
    within = freshness.parse_duration(verified_within) \
        if verified_within is not None else None
    return freshness.Thresholds(warn, crit, within)


def _json(report: freshness.Report) -> dict:
    from osbackup.db import rows
    items = []
    for item in report.items:
        items.append(dict(item, last_success=rows.iso(item['last_success']),
                          last_verify=rows.iso(item['last_verify']),
                          age=None if item['age'] is None
                          else round(item['age'], 1)))
    return {'state': report.state, 'exit_code': report.exit_code,
            'summary': report.summary, 'perfdata': report.perfdata,
            'items': items}


class CheckCommand:
    """The ``check`` action of the backup category."""

    @manage.args('--max-age', metavar='DURATION',
                 help='CRITICAL when a service\'s newest good backup is '
                      'older than this (e.g. 26h, 3d); the same as '
                      '--warning D --critical D.')
    @manage.args('--warning', metavar='DURATION',
                 help='WARNING age (default %s).' % DEFAULT_WARNING)
    @manage.args('--critical', metavar='DURATION',
                 help='CRITICAL age (default %s, or the warning age when '
                      'that is larger).' % DEFAULT_CRITICAL)
    @manage.args('--verified-within', metavar='DURATION',
                 help='Also WARNING when a service\'s backups were not '
                      'verified within this time; a verify that found '
                      'corruption is always CRITICAL.')
    @manage.args('--host', dest='hosts', action='append', default=[],
                 metavar='HOST',
                 help='Check only this host (repeatable); a host with no '
                      'backup at all is CRITICAL.')
    @manage.args('--service', dest='services', action='append', default=[],
                 metavar='SERVICE',
                 help='Check only this service (repeatable).')
    @manage.args('--dr', action='store_true',
                 help='Disaster-recovery check, without the catalogue: '
                      'find the newest backup of every (host, service) in '
                      'the records on storage, authenticate them and read '
                      'every artifact in full against its sha256. Exit 0 '
                      'when all of it is readable, 2 otherwise, 3 when '
                      'storage cannot be read.')
    @manage.args('--target', dest='targets', action='append', default=[],
                 metavar='TARGET',
                 help='With --dr: read this storage target (repeatable). '
                      'Default: [storage] backend and [storage] targets.')
    @manage.format_arg
    def check(self, max_age=None, warning=None, critical=None,
              verified_within=None, hosts=None, services=None, dr=False,
              targets=None, fmt='table'):
        """Nagios-style freshness check: exit 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN.

        A service is WARNING when its newest successful backup is older
        than the warning age or its newest attempt failed, CRITICAL when
        older than the critical age or never backed up (services an agent
        found but nobody backed up count too). A flagged secret missing
        from the newest backup of a host where the service is present is
        WARNING, CRITICAL for a critical one. Reads only the catalogue;
        with --dr, only the storage.
        """
        if dr:
            return self._dr(targets or [], hosts or [], services or [], fmt)
        try:
            limits = limits_from(max_age, warning, critical, verified_within)
        except exception.InvalidInput as exc:
            # The plugin convention: bad arguments are UNKNOWN, not CRITICAL.
            print('OSBACKUP UNKNOWN - %s' % exc.message)
            return freshness.EXIT_CODES[freshness.UNKNOWN]
        # Loaded here: the database libraries cost every other command.
        from oslo_db import exception as db_exc
        import sqlalchemy.exc
        try:
            report = self._report(limits, hosts or [], services or [])
        except (db_exc.DBError, sqlalchemy.exc.SQLAlchemyError,
                exception.OsbackupError) as exc:
            msg = getattr(exc, 'message', None) or str(exc).splitlines()[0]
            report = freshness.Report(
                freshness.UNKNOWN, [],
                'cannot read the catalogue: %s' % msg, "'services'=0")
        if fmt == 'json':
            output.emit_json(_json(report))
        else:
            print(report.line())
        return report.exit_code

    def _dr(self, targets, hosts, services, fmt) -> int:
        # Loaded here: the rest of osbackup-manage needs no storage code.
        from osbackup import drcheck
        try:
            report = drcheck.check(self.env.conf, targets, hosts, services)
        except exception.OsbackupError as exc:
            print('OSBACKUP DR UNKNOWN - %s' % exc.message)
            return freshness.EXIT_CODES[freshness.UNKNOWN]
        if fmt == 'json':
            output.emit_json(report)
            return report['exit_code']
        print('OSBACKUP DR %s - %s' % (report['state'], report['summary']))
        for item in report['items']:
            for problem in item['problems']:
                print('%s %s: %s' % (item['host'], item['service'] or '-',
                                     problem['error']))
        for entry in report['rejected']:
            print('REJECTED %s: %s' % (entry['record'], entry['reason']))
        return report['exit_code']

    def _report(self, limits, hosts, services) -> freshness.Report:
        from oslo_utils import timeutils
        # A monitoring check answers within its own timeout: one attempt
        # to reach the catalogue, not oslo.db's start-up retries.
        self.env.conf.set_override('max_retries', 0, 'database')
        catalogue = self.env.catalogue
        agents = catalogue.list_agents(self.env.conf.conductor.agent_down_time)
        present = {a['host']: (a['info'] or {}).get('services') or []
                   for a in agents}
        status = catalogue.backup_status(hosts, services, present)
        # Flagged secrets the newest backup lacks, on hosts where the
        # agent finds the service now.
        missing = catalogue.missing_secrets(hosts, services)
        for row in status:
            if row['installed']:
                row['secrets_missing'] = missing.get((row['host'],
                                                      row['service']))
        binlogs.annotate(catalogue, status, agents)
        return freshness.evaluate(status, timeutils.utcnow(), limits,
                                  hosts=hosts, services=services)

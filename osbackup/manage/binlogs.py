"""``osbackup-manage binlog list``: the archived binary logs, as ranges.

A range is a run of archived binlog segments with no gap in it; any point
from its start_time to its end_time can be restored to (``restore create
--to-time``). A range after a gap names the gap (``gap_before``).
"""

from osbackup import binlog_chain
from osbackup.conductor import binlogs as binlog_schedule
from osbackup.conductor import pitr
from osbackup.definitions import binlog as binlog_definition
from osbackup import exception
from osbackup import manage
from osbackup.manage import output


def host_ranges(catalogue, host=None) -> list[dict]:
    """Every host's ranges, in order."""
    by_host = {}
    for seg in catalogue.binlog_segments(host):
        by_host.setdefault(seg['host'], []).append(seg)
    return [rng for name in sorted(by_host)
            for rng in binlog_chain.ranges(by_host[name])]


def annotate(catalogue, status: list, agents: list) -> None:
    """Add to ``backup check`` rows of the binlog service what it judges.

    ``archive_lag_limit``: seconds without a shipment after which the
    archive lags (from the interval the agent reports);
    ``archive_break``: the gap before the newest archived range when no
    base backup lies in that range (no point after the gap is reachable).
    """
    rows = [r for r in status if r['service'] == binlog_definition.NAME]
    if not rows:
        return
    intervals = {a['host']: ((a['info'] or {}).get('binlog') or {}).get(
        'interval') for a in agents}
    bases = catalogue.pitr_bases()
    for row in rows:
        if intervals.get(row['host']):
            row['archive_lag_limit'] = binlog_schedule.lag_limit(
                intervals[row['host']])
        ranges = host_ranges(catalogue, row['host'])
        if ranges and ranges[-1]['gap_before'] and not any(
                pitr.range_of(ranges, b['binlog']) is ranges[-1]
                for b in bases if b['host'] == row['host']):
            row['archive_break'] = ranges[-1]['gap_before']


class BinlogCommands:
    """Archived MariaDB binary logs (point-in-time recovery)."""

    def __init__(self, env):
        self.env = env

    @manage.args('--host', dest='agent_host', metavar='HOST',
                 help='Only this database node (default: every one).')
    @manage.format_arg
    def list(self, agent_host=None, fmt='table'):
        """Archived ranges per host: times, GTIDs, files and gaps."""
        ranges = [binlog_chain.summary(r)
                  for r in host_ranges(self.env.catalogue, agent_host)]
        if agent_host and not ranges:
            raise exception.InvalidInput(
                'No archived binlog for host %r' % agent_host)
        if fmt == 'json':
            output.emit_json(ranges)
        else:
            output.table(ranges, [
                ('Host', 'host'), ('Start time', 'start_time'),
                ('End time', 'end_time'), ('GTID start', 'gtid_start'),
                ('GTID end', 'gtid_end'),
                ('From', lambda r: '%s:%d' % (r['first_file'],
                                              r['start_pos'])),
                ('To', lambda r: '%s:%d' % (r['last_file'], r['end_pos'])),
                ('Segments', 'segments'),
                ('Size', lambda r: output.human_size(r['size'])),
                ('Gap before', 'gap_before')])
            gaps = [r for r in ranges if r['gap_before']]
            for rng in gaps:
                print('GAP on %s before %s: %s' % (
                    rng['host'], rng['start_time'], rng['gap_before']))
        return manage.EXIT_OK

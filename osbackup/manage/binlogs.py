"""``osbackup-manage binlog list``: the archived binary logs, as ranges.

A range is a run of archived binlog segments with no gap in it; any point
from its start_time to its end_time can be restored to (``restore create
--to-time``). A range after a gap names the gap (``gap_before``).
"""

from osbackup import binlog_chain
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

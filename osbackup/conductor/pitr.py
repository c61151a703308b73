"""Point-in-time restores: a base backup plus the binlogs up to a moment.

``restore create --to-time T`` (or ``--to-gtid G``) picks the newest
logical backup of the databases that finished before T on a host whose
binlog archive holds a range from that backup's recorded position up to
T, and restores it with the ordinary plan (databases only); the agent's
load_db phase then replays the range's segments from the backup's
position up to T (osbackup/agent/restore.py, drivers/binlog_archive.py).
A T that falls in a gap of the archive, or after its last event, is
refused, naming the latest point that can be reached.
"""

import datetime
import zoneinfo

from osbackup import binlog_chain
from osbackup import exception

TIME_FORMAT = '%Y-%m-%d %H:%M:%S'


def parse_time(text: str, timezone: str) -> datetime.datetime:
    """``YYYY-MM-DD HH:MM:SS`` in ``timezone`` (or UTC with a Z): naive UTC."""
    value = text.strip()
    utc = value.endswith('Z')
    try:
        moment = datetime.datetime.strptime(value.rstrip('Z').strip(),
                                            TIME_FORMAT)
    except ValueError:
        raise exception.InvalidInput(
            '--to-time takes "YYYY-MM-DD HH:MM:SS" (in [conductor] timezone '
            '%s, or UTC with a Z suffix), not %r' % (timezone, text))
    if utc:
        return moment
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise exception.InvalidInput('[conductor] timezone %r is not a '
                                     'known time zone' % timezone)
    return moment.replace(tzinfo=zone).astimezone(
        datetime.timezone.utc).replace(tzinfo=None)


def _utc(iso: str | None) -> datetime.datetime | None:
    if not iso:
        return None
    return datetime.datetime.fromisoformat(iso.rstrip('Z'))


def shown(moment: datetime.datetime | None) -> str:
    return moment.strftime(TIME_FORMAT) + 'Z' if moment else '-'


def _place(file: str, position: int) -> tuple:
    return (binlog_chain.sequence(file), position)


def seq_no(gtid: str | None) -> int:
    """The sequence number of a GTID ``domain-server-seq`` (or -1)."""
    try:
        return int(gtid.split(',')[-1].rsplit('-', 1)[1])
    except (AttributeError, IndexError, ValueError):
        return -1


def range_of(ranges: list, position: dict) -> dict | None:
    """The range that holds binlog ``position`` ({'file','position'})."""
    here = _place(position['file'], position['position'])
    for rng in ranges:
        if (_place(rng['first_file'], rng['start_pos']) <= here <=
                _place(rng['last_file'], rng['end_pos'])):
            return rng
    return None


def _reached(rng, to_time, to_gtid) -> bool:
    if to_gtid:
        return seq_no(rng['gtid_end']) >= seq_no(to_gtid)
    return _utc(rng['end_time']) is not None and \
        _utc(rng['end_time']) >= to_time


def _before(base, to_time, to_gtid) -> bool:
    if to_gtid:
        return 0 <= seq_no(base['binlog'].get('gtid')) < seq_no(to_gtid)
    return _utc(base['finished_at']) <= to_time


def choose(bases: list, ranges_by_host: dict, to_time=None,
           to_gtid=None, host=None) -> dict:
    """The base backup, the range and its segments to reach the point.

    ``bases``: logical backups with a recorded binlog position
    (Catalogue.pitr_bases), newest first. Raises InvalidInput naming the
    latest reachable point when the point cannot be reached.
    """
    wanted = 'GTID %s' % to_gtid if to_gtid else shown(to_time)
    candidates = [b for b in bases if (not host or b['host'] == host) and
                  ranges_by_host.get(b['host'])]
    if not candidates:
        raise exception.InvalidInput(
            'No logical backup of the databases with a recorded binlog '
            'position on a host with archived binlogs%s: take a backup of '
            'the mysql service with log_bin on (see "osbackup-manage '
            'binlog list")' % (' (%s)' % host if host else ''))
    before = [b for b in candidates if _before(b, to_time, to_gtid)]
    if not before:
        raise exception.InvalidInput(
            'No backup with a binlog position finished before %s; the '
            'oldest is backup %s (%s)' % (
                wanted, candidates[-1]['backup_id'],
                candidates[-1]['finished_at']))
    base = before[0]
    ranges = ranges_by_host[base['host']]
    rng = range_of(ranges, base['binlog'])
    if rng is None:
        raise exception.InvalidInput(
            'The binlog archive of %s does not hold the position of backup '
            '%s (%s:%d): it was not archived (see "osbackup-manage binlog '
            'list")' % (base['host'], base['backup_id'],
                        base['binlog']['file'], base['binlog']['position']))
    if not _reached(rng, to_time, to_gtid):
        later = ranges[ranges.index(rng) + 1:]
        why = ('falls in a gap of the binlog archive (%s)'
               % later[0]['gap_before']) if later else \
            'is after the last archived event'
        raise exception.InvalidInput(
            '%s %s of %s; the latest point reachable from backup %s is %s '
            '(GTID %s)' % (wanted, why, base['host'], base['backup_id'],
                           rng['end_time'], rng['gtid_end']))
    start = base['binlog']
    segments = []
    for seg in rng['segments']:
        meta = seg['meta']
        if binlog_chain.sequence(meta['file']) < \
                binlog_chain.sequence(start['file']):
            continue
        if to_time and segments and meta['start_time'] and \
                _utc(meta['start_time']) > to_time:
            break
        segments.append(seg)
        if to_gtid and seq_no(meta['gtid_end']) >= seq_no(to_gtid):
            break
    return {'base': base, 'range': rng, 'segments': segments}


def replay_spec(choice: dict, databases: list, to_time=None,
                to_gtid=None) -> dict:
    """What the agent's load_db replays after loading the databases.

    ``stop_datetime`` is the second after ``to_time``, in UTC: every
    event of the second asked for is replayed (mariadb-binlog stops at the
    first event at or after it).
    """
    base = choice['base']
    return {
        'start': {k: base['binlog'].get(k) for k in
                  ('file', 'position', 'gtid')},
        'stop_datetime': (to_time + datetime.timedelta(seconds=1)).strftime(
            TIME_FORMAT) if to_time else None,
        'stop_gtid': to_gtid,
        'databases': sorted(databases),
        'segments': [{k: s[k] for k in ('id', 'name', 'location', 'sha256',
                                        'size', 'meta')}
                     for s in choice['segments']]}


def summary(choice: dict, to_time=None, to_gtid=None) -> dict:
    """What --dry-run and restore show of a point-in-time restore."""
    segs = choice['segments']
    first, last = segs[0]['meta'], segs[-1]['meta']
    base = choice['base']
    return {'backup_id': base['backup_id'], 'host': base['host'],
            'backup_finished_at': base['finished_at'],
            'from': '%s:%d' % (base['binlog']['file'],
                               base['binlog']['position']),
            'from_gtid': base['binlog'].get('gtid'),
            'to_time': shown(to_time) if to_time else None,
            'to_gtid': to_gtid,
            'binlog_range': '%s:%d-%s:%d' % (first['file'], first['start_pos'],
                                             last['file'], last['end_pos']),
            'segments': len(segs),
            'archive_end_time': choice['range']['end_time']}


def resolve(conf, catalogue, point: dict, hosts: list) -> dict:
    """Pick the base and range for ``point`` ({to_time, to_gtid, ...})."""
    if bool(point.get('to_time')) == bool(point.get('to_gtid')):
        raise exception.InvalidInput('Give one of --to-time and --to-gtid')
    if len(hosts or []) > 1:
        raise exception.InvalidInput('A point-in-time restore restores one '
                                     'database server: give one --host')
    to_time = parse_time(point['to_time'], conf.conductor.timezone) \
        if point.get('to_time') else None
    to_gtid = point.get('to_gtid')
    if to_gtid and seq_no(to_gtid) < 0:
        raise exception.InvalidInput('--to-gtid takes a GTID '
                                     'DOMAIN-SERVER-SEQ, not %r' % to_gtid)
    by_host = {}
    for seg in catalogue.binlog_segments():
        by_host.setdefault(seg['host'], []).append(seg)
    ranges = {h: binlog_chain.ranges(segs) for h, segs in by_host.items()}
    choice = choose(catalogue.pitr_bases(), ranges, to_time, to_gtid,
                    hosts[0] if hosts else None)
    wanted = point.get('databases') or []
    unknown = sorted(set(wanted) - set(choice['base']['databases']))
    if unknown:
        raise exception.InvalidInput(
            'Backup %s has no database %s (databases: %s)' % (
                choice['base']['backup_id'], ', '.join(unknown),
                ', '.join(sorted(choice['base']['databases']))))
    return dict(choice, to_time=to_time, to_gtid=to_gtid, databases=wanted)


def apply(plan: dict, choice: dict) -> None:
    """Keep the chosen databases of the plan and add the replay to it."""
    host = choice['base']['host']
    entry = plan['hosts'][host]
    # Databases only: the server's accounts stay as they are.
    entry.pop('accounts', None)
    if choice['databases']:
        entry['databases'] = [d for d in entry['databases']
                              if d['database'] in choice['databases']]
    loaded = [d['database'] for d in entry['databases']]
    if not loaded:
        raise exception.InvalidInput('Nothing to restore to a point in time '
                                     'with this selection')
    entry['replay'] = replay_spec(choice, loaded, choice['to_time'],
                                  choice['to_gtid'])
    plan['pitr'] = summary(choice, choice['to_time'], choice['to_gtid'])

"""Archived binlog segments as chains: contiguous ranges and their gaps.

A segment (an artifact of kind ``binlog``, osbackup/drivers/
binlog_archive.py) is a byte range of one binlog file. A segment continues
the one before it when it starts where that one ended in the same file, or
at the start of the next file once that one was closed. Anything else, or a
segment whose archive task saw a break (its ``gap`` meta), starts a new
range after a gap: what lies between is not archived and no point in it can
be restored.
"""


def sequence(name: str) -> int:
    """The number of a binlog file name (mysql-bin.000042 -> 42)."""
    try:
        return int(name.rsplit('.', 1)[1])
    except (IndexError, ValueError):
        return -1


def follows(prev: dict, meta: dict) -> bool:
    """Whether segment ``meta`` continues segment ``prev`` (both meta)."""
    if meta.get('gap'):
        return False
    if meta['file'] == prev['file']:
        return meta['start_pos'] == prev['end_pos']
    return (meta['start_pos'] == 0 and
            sequence(meta['file']) ==
            sequence(prev['file']) + 1)


def ranges(segments: list[dict]) -> list[dict]:
    """Contiguous ranges of one host's segments (in archive order).

    Each range: its host, first and last file and position, start_time,
    end_time, gtid_start, gtid_end, the segments (artifacts) in it and
    ``gap_before``: why it does not continue the range before it (None for
    the first range, unless its first segment recorded a break).
    """
    out = []
    for seg in segments:
        meta = seg['meta']
        last = out[-1] if out else None
        if last is not None and follows(last['segments'][-1]['meta'], meta):
            last['segments'].append(seg)
            last['last_file'], last['end_pos'] = meta['file'], meta['end_pos']
            last['end_time'] = max(filter(None, (last['end_time'],
                                                 meta['end_time'])),
                                   default=None)
            last['gtid_end'] = meta['gtid_end'] or last['gtid_end']
            continue
        if last is None:
            gap = meta.get('gap')
        else:
            gap = meta.get('gap') or (
                'not archived: %s from position %d to %s position %d'
                % (last['last_file'], last['end_pos'], meta['file'],
                   meta['start_pos']))
        out.append({'host': seg['host'], 'first_file': meta['file'],
                    'start_pos': meta['start_pos'],
                    'last_file': meta['file'], 'end_pos': meta['end_pos'],
                    'start_time': meta['start_time'],
                    'end_time': meta['end_time'],
                    'gtid_start': meta['gtid_start'],
                    'gtid_end': meta['gtid_end'],
                    'gap_before': gap, 'segments': [seg]})
    return out


def summary(rng: dict) -> dict:
    """A range without its segment list, for listings."""
    out = {k: v for k, v in rng.items() if k != 'segments'}
    out['segments'] = len(rng['segments'])
    out['size'] = sum(s.get('size') or 0 for s in rng['segments'])
    return out


def replay_target(spec: dict) -> str:
    """A point-in-time replay as its restore step names it."""
    return 'binlog %s:%d to %s' % (
        spec['start']['file'], spec['start']['position'],
        'GTID %s' % spec['stop_gtid'] if spec['stop_gtid'] else
        'before %s UTC' % spec['stop_datetime'])

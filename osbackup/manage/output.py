"""Output of osbackup-manage: tables for people, JSON for scripts."""

import json
import sys


def human_size(n) -> str:
    if n is None:
        return '-'
    n = float(n)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(n) < 1024 or unit == 'TiB':
            return ('%d %s' % (n, unit)) if unit == 'B' else \
                '%.1f %s' % (n, unit)
        n /= 1024
    return str(n)


def table(rows: list, columns: list, out=None) -> None:
    """Print ``rows`` (dicts) as an aligned table of ``columns``.

    ``columns`` is a list of (heading, key or callable) pairs.
    """
    out = out or sys.stdout
    cells = [[h for h, _ in columns]]
    for row in rows:
        cells.append([_cell(row, getter) for _, getter in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    sep = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'
    print(sep, file=out)
    for n, r in enumerate(cells):
        print('| ' + ' | '.join(c.ljust(w) for c, w in zip(r, widths))
              + ' |', file=out)
        if n == 0:
            print(sep, file=out)
    print(sep, file=out)


def _cell(row, getter):
    value = getter(row) if callable(getter) else row.get(getter)
    if value is None:
        return '-'
    if isinstance(value, (list, tuple)):
        return ','.join(str(v) for v in value) or '-'
    return str(value)


def fields(obj: dict, keys: list, out=None) -> None:
    """Print one object as a two-column Field/Value table."""
    table([{'field': k, 'value': obj.get(k)} for k in keys],
          [('Field', 'field'), ('Value', 'value')], out=out)


def emit_json(data, out=None) -> None:
    json.dump(data, out or sys.stdout, indent=2, sort_keys=True)
    (out or sys.stdout).write('\n')

"""Restore order from the definitions' dependencies.

The database and message bus come first, keystone next, the services
that authenticate against it after; a dependency on a definition that is
not part of a restore is ignored.
"""

import graphlib


def restore_order(definitions: dict) -> list[str]:
    """Every definition's name, each after the ones it depends on.

    Ties keep name order so the plan is the same on every run.
    """
    graph = {name: {d for d in definitions[name].after if d in definitions}
             for name in definitions}
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise ValueError('Service definitions depend on each other in a '
                         'cycle: %s' % ' -> '.join(exc.args[1]))
    out = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        out.extend(ready)
        sorter.done(*ready)
    return out


def sort_services(names, definitions: dict) -> list[str]:
    """``names`` in restore order; unknown names last, by name."""
    rank = {n: i for i, n in enumerate(restore_order(definitions))}
    return sorted(set(names), key=lambda n: (rank.get(n, len(rank)), n))

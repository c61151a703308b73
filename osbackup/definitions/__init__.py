"""Service definitions: one module per service, each with a DEFINITION.

``builtin()`` finds the modules of this package; ``load(conf)`` adds the
operator's ``[agent] extra_filesets``. Both refuse definitions that name a
path outside the node root or claim a path another definition claims.
"""

import functools
import importlib
import pkgutil

from osbackup.definitions import base
from osbackup.definitions import order

ServiceDefinition = base.ServiceDefinition
_NOT_SERVICES = frozenset({'base', 'order', 'extra'})


def validate(definitions: dict[str, base.ServiceDefinition]) -> None:
    """Raise ValueError for a bad path or a path claimed twice."""
    owner = {}
    for name, definition in sorted(definitions.items()):
        for path in definition.claimed_paths():
            base.check_path(name, path)
            owner.setdefault(path, set()).add(name)
    claimed = sorted(owner)
    for path in claimed:
        names = set(owner[path])
        # A path inside another definition's path is claimed by both.
        names |= {o for other in claimed if path.startswith(other + '/')
                  for o in owner[other]}
        if len(names) > 1:
            raise ValueError(
                'Service definitions %s all claim %s: a path belongs to '
                'one definition' % (' and '.join(sorted(names)), path))
    order.restore_order(definitions)


@functools.cache
def builtin() -> dict[str, base.ServiceDefinition]:
    """The definitions shipped with osbackup, keyed by name."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_SERVICES:
            continue
        module = importlib.import_module('%s.%s' % (__name__, info.name))
        definition = module.DEFINITION
        found[definition.name] = definition
    validate(found)
    return found


def load(conf) -> dict[str, base.ServiceDefinition]:
    """Built-in definitions plus this node's ``[agent] extra_filesets``."""
    from osbackup.definitions import extra
    definitions = dict(builtin())
    for definition in extra.from_conf(conf):
        if definition.name in definitions:
            raise ValueError('[agent] extra_filesets: %s is already a '
                             'service definition' % definition.name)
        definitions[definition.name] = definition
    validate(definitions)
    return definitions

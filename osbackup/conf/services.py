"""Per-service option groups, generated from the service definitions.

Each file-set definition in ``osbackup.definitions`` gets a group of its
own name ([nova], [neutron], ...) whose defaults come from the definition:
what its driver archives and which units a restore stops and starts.
"""

from osbackup import definitions


def _groups():
    return [(d.group(), d.opts()) for d in definitions.builtin().values()
            if d.opts()]


def register_opts(conf):
    for group, opts in _groups():
        conf.register_group(group)
        conf.register_opts(opts, group=group)


def list_opts():
    return dict(_groups())

"""Option listing for oslo-config-generator (entry point oslo.config.opts)."""

import collections
import importlib
import pkgutil

import osbackup.conf

_IGNORED = ('opts',)


def list_opts():
    """Return [(group, [opts])] for every osbackup option module."""
    merged = collections.OrderedDict()
    package = osbackup.conf
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in _IGNORED:
            continue
        module = importlib.import_module('%s.%s' % (package.__name__,
                                                    info.name))
        for group, opts in module.list_opts().items():
            key = group if isinstance(group, str) else group.name
            merged.setdefault(key, (group, []))[1].extend(opts)
    return [(group, opts) for group, opts in merged.values()]


def set_defaults():
    """Library defaults osbackup changes (oslo.config.opts.defaults).

    Registering osbackup's options applies its [database] connection
    default; the RPC defaults set the ``osbackup`` exchange.
    """
    from osbackup import rpc
    rpc.set_defaults(osbackup.conf.CONF)

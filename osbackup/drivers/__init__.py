"""Service drivers, loaded through stevedore (``osbackup.drivers``).

A file-set service definition with no driver class of its own (most of
them) is served by ``FileSetDriver``: adding such a service is one module
in ``osbackup.definitions``.
"""

from oslo_log import log as logging
from stevedore import extension
from stevedore import named

from osbackup import definitions
from osbackup.drivers import fileset
from osbackup import exception

LOG = logging.getLogger(__name__)
NAMESPACE = 'osbackup.drivers'


def _classes() -> list[str]:
    return extension.ExtensionManager(NAMESPACE).names()


def _definition_only(classes) -> dict:
    """File-set definitions that no driver class serves."""
    return {name: d for name, d in definitions.builtin().items()
            if d.fileset and name not in classes}


def installed_names() -> list[str]:
    """Names of every driver installed on this machine."""
    classes = _classes()
    return sorted(set(classes) | set(_definition_only(classes)))


def load(conf) -> dict:
    """Instantiate the drivers this agent runs, keyed by name.

    A broken driver is logged and left out instead of killing the agent; a
    name the operator listed explicitly that is not installed is an error.
    """
    try:
        extras = {name: d for name, d in definitions.load(conf).items()
                  if name not in definitions.builtin()}
    except ValueError as exc:
        raise exception.InvalidInput(str(exc))
    available = installed_names() + sorted(extras)
    names = conf.agent.drivers or available
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise exception.InvalidInput(
            'Unknown driver(s) in [agent] drivers: %s (installed: %s)'
            % (', '.join(unknown), ', '.join(available)))

    def _failed(_mgr, entrypoint, exc):
        LOG.error('Could not load driver %s: %s', entrypoint.name, exc)

    mgr = named.NamedExtensionManager(
        NAMESPACE, names=names, invoke_on_load=True, invoke_args=(conf,),
        name_order=True, on_load_failure_callback=_failed)
    loaded = {ext.name: ext.obj for ext in mgr}
    for name, definition in {**_definition_only(_classes()),
                             **extras}.items():
        if name in names:
            loaded[name] = fileset.FileSetDriver(conf, definition)
    return {name: loaded[name] for name in names if name in loaded}

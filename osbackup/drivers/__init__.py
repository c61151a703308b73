"""Service drivers, loaded through stevedore (``osbackup.drivers``)."""

from oslo_log import log as logging
from stevedore import extension
from stevedore import named

from osbackup import exception

LOG = logging.getLogger(__name__)
NAMESPACE = 'osbackup.drivers'


def installed_names() -> list[str]:
    """Names of every driver installed on this machine."""
    return sorted(extension.ExtensionManager(NAMESPACE).names())


def load(conf) -> dict:
    """Instantiate the drivers this agent runs, keyed by name.

    A broken driver is logged and left out instead of killing the agent; a
    name the operator listed explicitly that is not installed is an error.
    """
    names = conf.agent.drivers or installed_names()
    unknown = sorted(set(names) - set(installed_names()))
    if unknown:
        raise exception.InvalidInput(
            'Unknown driver(s) in [agent] drivers: %s (installed: %s)'
            % (', '.join(unknown), ', '.join(installed_names())))

    def _failed(_mgr, entrypoint, exc):
        LOG.error('Could not load driver %s: %s', entrypoint.name, exc)

    mgr = named.NamedExtensionManager(
        NAMESPACE, names=names, invoke_on_load=True, invoke_args=(conf,),
        name_order=True, on_load_failure_callback=_failed)
    return {ext.name: ext.obj for ext in mgr}

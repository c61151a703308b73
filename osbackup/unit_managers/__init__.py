"""Unit managers: stop, start and check a node's units, through stevedore.

Namespace ``osbackup.unit_managers`` (``osbackup.service_managers`` before
the package was renamed from ``osbackup.services``; ``[DEFAULT]
service_manager`` keeps its name and values).
"""

from stevedore import driver

from osbackup import exception

NAMESPACE = 'osbackup.unit_managers'


def get_manager(conf, name: str | None = None):
    """Return the configured unit manager."""
    name = name or conf.service_manager
    try:
        return driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                                    invoke_args=(conf,)).driver
    except Exception as exc:
        raise exception.InvalidInput(
            'Unknown or broken service manager %r: %s' % (name, exc))

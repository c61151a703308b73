"""Service managers, loaded through stevedore.

Namespace ``osbackup.service_managers``.
"""

from stevedore import driver

from osbackup import exception

NAMESPACE = 'osbackup.service_managers'


def get_manager(conf, name: str | None = None):
    """Return the configured service manager."""
    name = name or conf.service_manager
    try:
        return driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                                    invoke_args=(conf,)).driver
    except Exception as exc:
        raise exception.InvalidInput(
            'Unknown or broken service manager %r: %s' % (name, exc))

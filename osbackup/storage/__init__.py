"""Storage backends, loaded through stevedore (``osbackup.storage``)."""

from stevedore import driver

from osbackup import exception

NAMESPACE = 'osbackup.storage'


def get_storage(conf, name: str | None = None):
    """Return the configured (or named) storage backend instance."""
    name = name or conf.storage.backend
    try:
        mgr = driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                                   invoke_args=(conf,))
    except Exception as exc:
        raise exception.InvalidInput(
            'Unknown or broken storage backend %r: %s' % (name, exc))
    return mgr.driver

"""Storage backends, loaded through stevedore (``osbackup.storage``)."""

from stevedore import driver
from stevedore import extension

from osbackup import exception
from osbackup.storage import encrypted

NAMESPACE = 'osbackup.storage'


def get_storage(conf, name: str | None = None):
    """Return the configured (or named) storage backend instance.

    It encrypts at rest when ``[storage] encryption_key_file`` is set
    (storage/encrypted.py).
    """
    name = name or conf.storage.backend
    try:
        mgr = driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                                   invoke_args=(conf,))
    except Exception as exc:
        raise exception.InvalidInput(
            'Unknown or broken storage backend %r: %s' % (name, exc))
    return encrypted.wrap(conf, mgr.driver)


def installed_names() -> list[str]:
    """Names of the storage backends (targets) installed here."""
    return sorted(extension.ExtensionManager(NAMESPACE).names())

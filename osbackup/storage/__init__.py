"""Storage backends, loaded through stevedore (``osbackup.storage``)."""

from stevedore import driver
from stevedore import extension

from osbackup.conf import storage_targets
from osbackup import exception
from osbackup.storage import encrypted

NAMESPACE = 'osbackup.storage'


def get_storage(conf, name: str | None = None):
    """Return the storage of target ``name`` (default: the default one).

    A name in ``[storage] targets`` is a named target configured by its
    own group; any other name is a backend with its single-target options.
    It encrypts at rest when ``[storage] encryption_key_file`` is set
    (storage/encrypted.py).
    """
    name = name or conf.storage.backend
    backend, kwds = name, {}
    if name in conf.storage.targets:
        group = storage_targets.target_group(conf, name)
        backend = group.backend
        kwds = {'path': group.local_path} if backend == 'local' else \
            {'options': group}
    try:
        mgr = driver.DriverManager(NAMESPACE, backend, invoke_on_load=True,
                                   invoke_args=(conf,), invoke_kwds=kwds)
    except exception.OsbackupError:
        raise
    except Exception as exc:
        raise exception.InvalidInput(
            'Unknown or broken storage backend %r: %s' % (backend, exc))
    storage = mgr.driver
    # Copies and reports name the target, not the kind of backend.
    storage.name = name
    return encrypted.wrap(conf, storage)


def installed_names() -> list[str]:
    """Names of the storage backends installed here."""
    return sorted(extension.ExtensionManager(NAMESPACE).names())


def target_names(conf) -> list[str]:
    """What ``--target`` takes: the named targets and the backends."""
    return sorted(set(installed_names()) | set(conf.storage.targets))

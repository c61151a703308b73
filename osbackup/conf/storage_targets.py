"""Groups of the named storage targets (``[storage] targets``).

A target's group holds ``backend`` and that backend's options, the very
options of its single-target group (``[ssh_storage]``, ...), registered
when the target is first used: which ones depends on ``backend``.
"""

from oslo_config import cfg

from osbackup.conf import s3_storage
from osbackup.conf import ssh_storage
from osbackup.conf import storage
from osbackup.conf import swift_storage
from osbackup import exception

_LOCAL_PATH = [o for o in storage.storage_opts if o.name == 'local_path']

BACKEND_OPTS = {
    'local': _LOCAL_PATH,
    'ssh': ssh_storage.ssh_storage_opts,
    'swift': swift_storage.swift_storage_opts,
    's3': s3_storage.s3_storage_opts,
}

backend_opt = cfg.StrOpt(
    'backend', choices=sorted(BACKEND_OPTS),
    help='Backend of this named target; the group also holds that '
         'backend\'s options.')

_REGISTERED = '_osbackup_targets'


def target_group(conf, name: str):
    """The options of target ``name``, registered on first use."""
    registered = conf.__dict__.setdefault(_REGISTERED, set())
    if name not in registered:
        if name in conf or name.lower() == 'default':
            raise exception.InvalidInput(
                'Storage target name %r is taken by the option group [%s]; '
                'name the target otherwise in [storage] targets' % (name,
                                                                    name))
        group = cfg.OptGroup(name, title='Storage target %s' % name)
        conf.register_group(group)
        conf.register_opt(backend_opt, group=group)
        backend = conf[name].backend
        if backend is None:
            raise exception.InvalidInput(
                'Storage target %s has no backend: set [%s] backend to one '
                'of %s' % (name, name, ', '.join(sorted(BACKEND_OPTS))))
        conf.register_opts(BACKEND_OPTS[backend], group=group)
        registered.add(name)
    return conf[name]


def list_opts():
    # Target groups have names only the configuration knows.
    return {}

"""Operator-defined file sets: ``[agent] extra_filesets`` with no code.

Each name in ``[agent] extra_filesets`` gets an option group of that name
with its ``paths``, ``log_paths``, ``excludes``, ``units`` and ``secrets``
(HAProxy and keepalived configuration, TLS certificates): a definition
like the built-in ones, archived and restored by the file-set driver.
"""

from oslo_config import cfg

from osbackup.definitions import base

_OPTS = [
    cfg.ListOpt('paths', default=[],
                help='Absolute paths of this file set (resolved under '
                     '[agent] root_path).'),
    cfg.ListOpt('log_paths', default=[],
                help='Log paths, archived unless include_logs is off.'),
    cfg.ListOpt('excludes', default=[],
                help='Subtrees of the paths never archived.'),
    cfg.ListOpt('secrets', default=[],
                help='Paths among the above that hold secrets (keys, '
                     'certificates), listed by "service list".'),
]


def register_opts(conf) -> None:
    """Register the group of each name in ``[agent] extra_filesets``."""
    for name in conf.agent.extra_filesets or []:
        if name in conf and not _ours(conf, name):
            raise ValueError('[agent] extra_filesets: %s is already an '
                             'option group of osbackup' % name)
        _register(conf, name)


def from_conf(conf) -> list[base.ServiceDefinition]:
    """The definitions of this node's ``[agent] extra_filesets``."""
    register_opts(conf)
    out = []
    for name in conf.agent.extra_filesets or []:
        group = conf[name]
        out.append(base.ServiceDefinition(
            name=name, title='Operator-defined file set %s' % name,
            paths=tuple(group.paths), log_paths=tuple(group.log_paths),
            excludes=tuple(group.excludes), units=tuple(group.units),
            secrets=tuple(base.Secret(p, 'operator-defined secret')
                          for p in group.secrets),
            after=base.AFTER_KEYSTONE))
        if not group.paths:
            raise ValueError('[%s] paths: an extra file set needs at least '
                             'one path' % name)
    return out


def _ours(conf, name: str) -> bool:
    """Whether ``[name]`` is a group this module registered."""
    try:
        conf[name].log_paths
        conf[name].secrets
    except cfg.NoSuchOptError:
        return False
    return True


def _register(conf, name: str) -> None:
    # Registering the same options again is a no-op for oslo.config.
    template = base.ServiceDefinition(name=name, title=name)
    conf.register_group(cfg.OptGroup(
        name, title='Operator-defined file set %s' % name))
    conf.register_opts(_OPTS + template.opts(), group=name)

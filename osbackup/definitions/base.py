"""What osbackup knows about one service, stated in one place.

A ``ServiceDefinition`` is plain data: the agent's drivers archive and
restore what it names, the conductor orders restores by its dependencies,
the option group ``[<name>]`` is generated from it, and ``osbackup-manage
service list`` and ``backup check`` show its secrets. It imports nothing
of the agent or the conductor.
"""

import dataclasses
import posixpath

from oslo_config import cfg


@dataclasses.dataclass(frozen=True)
class OptionalPath:
    """A large subtree, left out unless ``[<service>] <option>`` is on."""

    option: str
    path: str
    what: str


@dataclasses.dataclass(frozen=True)
class Secret:
    """A file whose loss loses data (keys, certificates, passwords).

    ``critical``: it cannot be recreated; without it what it protects
    (stored secrets, load balancers, encrypted volumes) is gone.
    """

    path: str
    what: str
    critical: bool = False


#: Definitions restored before everything: the database and message bus.
FOUNDATION: tuple[str, ...] = ('mysql', 'mariabackup', 'rabbitmq')
#: Services that authenticate against keystone come after it.
AFTER_KEYSTONE: tuple[str, ...] = ('keystone',)


@dataclasses.dataclass(frozen=True)
class ServiceDefinition:
    """One service: its files, units, databases, secrets and order."""

    name: str
    title: str
    paths: tuple[str, ...] = ()
    log_paths: tuple[str, ...] = ()
    optional_paths: tuple[OptionalPath, ...] = ()
    #: Subtrees never archived (caches, sockets).
    excludes: tuple[str, ...] = ()
    #: Paths whose presence means the service is installed (default:
    #: any of ``paths``).
    markers: tuple[str, ...] = ()
    #: Units in the order a restore starts them.
    units: tuple[str, ...] = ()
    #: Databases (mysql artifacts) the service owns.
    databases: tuple[str, ...] = ()
    secrets: tuple[Secret, ...] = ()
    #: Definitions whose restore must come first.
    after: tuple[str, ...] = AFTER_KEYSTONE
    #: Whether file-set backups may be incremental.
    incremental: bool = True
    #: False for definitions whose driver has its own option group and
    #: archives no file set (mysql, mariabackup).
    fileset: bool = True
    #: Options of the group beyond the generated ones.
    extra_opts: tuple[cfg.Opt, ...] = ()
    #: The (Debian) package whose version stands for the service's:
    #: recorded in backups, compared with the node's by a restore plan.
    package: str = ''
    #: Directories of the package's alembic migrations (files naming
    #: ``revision`` and ``down_revision``), under the node root: a
    #: restore tells from them whether a live database is newer than a
    #: dump.
    migrations: tuple[str, ...] = ()

    def claimed_paths(self) -> tuple[str, ...]:
        """Every path this definition archives or restores."""
        return (self.paths + self.log_paths +
                tuple(o.path for o in self.optional_paths))

    def restorable_paths(self) -> frozenset[str]:
        """The allow-list a restore of this service may write to."""
        return frozenset(self.claimed_paths())

    def present_markers(self) -> tuple[str, ...]:
        return self.markers or self.paths

    def opts(self) -> list[cfg.Opt]:
        """The options of ``[<name>]``, with defaults from the definition."""
        opts = []
        if self.fileset:
            opts += [
                cfg.BoolOpt('include_logs', default=True,
                            help='Archive %s too. Turn off where logs are '
                                 'centralised.'
                                 % (', '.join(self.log_paths) or
                                    'the service\'s log directories')),
                cfg.ListOpt('units', default=list(self.units),
                            help='Units a restore stops before and starts '
                                 'after replacing %s\'s files. Units not '
                                 'installed on a host are ignored there.'
                                 % self.name),
                cfg.ListOpt('databases', default=list(self.databases),
                            help='Databases (mysql driver artifacts) that '
                                 'belong to %s. Restoring %s loads them, '
                                 'and loading them stops %s\'s units '
                                 'first. Read by the conductor.'
                                 % (self.name, self.name, self.name)),
            ]
            opts += [cfg.BoolOpt(o.option, default=False,
                                 help='Archive %s (%s). Large; off by '
                                      'default.' % (o.path, o.what))
                     for o in self.optional_paths]
        return opts + list(self.extra_opts)

    def group(self) -> cfg.OptGroup:
        return cfg.OptGroup(self.name, title=self.title)


def check_path(definition: str, path: str) -> None:
    """Refuse a path that is not absolute or leaves the node root."""
    if (not path.startswith('/') or posixpath.normpath(path) != path or
            path == '/'):
        raise ValueError(
            'Service definition %s names %r: paths must be absolute, '
            'normalised and inside the node root (no "..", not "/")'
            % (definition, path))

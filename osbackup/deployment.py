"""Whether this node runs all-in-one or as part of a fleet.

Without a ``transport_url`` osbackup runs all-in-one: conductor and agent
share one process over oslo.messaging's in-memory driver. This module
answers the question without importing oslo.messaging, so commands that
never use the message bus do not load it (a quarter of a second).
"""

from oslo_config import cfg

#: The option oslo.messaging registers; read here from the same sources.
TRANSPORT_URL = 'transport_url'


def is_all_in_one(conf: cfg.ConfigOpts) -> bool:
    """True when no ``transport_url`` was configured anywhere.

    oslo.messaging's own default (``rabbit://``) does not count: a node
    with no broker configured runs conductor and agent in one process.
    Before oslo.messaging's options are registered, the value is read from
    the config files and environment ``conf`` was parsed from.
    """
    if TRANSPORT_URL not in conf:
        conf = _probe(conf)
    if not conf[TRANSPORT_URL]:
        return True
    return conf.get_location(TRANSPORT_URL).location in (
        cfg.Locations.opt_default, cfg.Locations.set_default)


def _probe(conf: cfg.ConfigOpts) -> cfg.ConfigOpts:
    """A private ConfigOpts holding only transport_url, parsed like conf."""
    probe = cfg.ConfigOpts()
    probe.register_opt(cfg.StrOpt(TRANSPORT_URL, secret=True))
    parsed = 'config_file' in conf  # only once conf was called
    probe(args=[], default_config_files=list(
              conf.config_file or []) if parsed else [],
          default_config_dirs=list(conf.config_dir or []) if parsed else [])
    return probe

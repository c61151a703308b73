"""Start-up shared by the osbackup commands: config, logging, RPC defaults."""

import sys

from oslo_log import log as logging

import osbackup.conf
from osbackup import rpc
from osbackup import version

CONF = osbackup.conf.CONF


def setup(argv, default_log_levels=None, use_stderr=False):
    """Parse the command line and config files, set up logging.

    ``use_stderr`` keeps a command's stdout for its own output (JSON).
    """
    logging.register_options(CONF)
    if use_stderr:
        CONF.set_default('use_stderr', True)
    rpc.set_defaults(CONF)
    if default_log_levels:
        logging.set_defaults(default_log_levels=default_log_levels)
    CONF(argv, project='osbackup', version=version.version_string())
    logging.setup(CONF, 'osbackup')
    return CONF


def daemon_main(service_factory, argv=None):
    """Run a long-lived osbackup service until SIGTERM."""
    from osbackup import service
    conf = setup(sys.argv[1:] if argv is None else argv)
    rpc.init(conf)
    try:
        service.run([service_factory(conf)])
    finally:
        rpc.cleanup()

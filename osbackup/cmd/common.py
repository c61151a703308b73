"""Start-up shared by the osbackup commands: config, logging, RPC defaults."""

import sys

from oslo_log import log as logging

import osbackup.conf
from osbackup import exception
from osbackup import rpc
from osbackup import version

CONF = osbackup.conf.CONF
LOG = logging.getLogger(__name__)


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
    try:
        rpc.init(conf)
        daemon = service_factory(conf)
    except exception.OsbackupError as exc:
        # A missing or unsafe key file, an unknown driver...: say so,
        # without a traceback.
        LOG.error('Cannot start: %s', exc.message)
        rpc.cleanup()
        sys.exit('ERROR: %s' % exc.message)
    try:
        service.run([daemon])
    finally:
        rpc.cleanup()

"""Start-up shared by the osbackup commands: config, logging, RPC defaults.

A mistake in the command line or the configuration ends every command
the same way: one line on stderr (also when logging goes to a file) and
exit status 2, never a traceback.
"""

import contextlib
import re
import sys

from oslo_config import cfg
from oslo_log import log as logging

import osbackup.conf
from osbackup import exception
from osbackup import version

CONF = osbackup.conf.CONF
LOG = logging.getLogger(__name__)

PROJECT = 'osbackup'
#: Exit status of a user mistake (osbackup.manage.EXIT_USAGE too).
EXIT_USAGE = 2
EXIT_FAILED = 1
#: Where oslo.config looks for osbackup.conf when no --config-file is
#: given (``cfg.find_config_files(project='osbackup')``), for messages.
SEARCHED = ('~/.osbackup', '~', '/etc/osbackup', '/etc')

_LOGGING_READY = False
_LOCATION = re.compile(r"from LocationInfo\(location=<Locations\.\w+: "
                       r"[^>]*>, detail='([^']*)'\)")


class StartupError(Exception):
    """A start-up failure with a one-line message and an exit status."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.message = message
        self.code = code


def config_error(exc: Exception) -> StartupError:
    """The operator's one-line form of a configuration error."""
    if isinstance(exc, OSError):
        return StartupError('Cannot read config file %s: %s'
                            % (exc.filename, exc.strerror))
    # oslo.config names the file as a LocationInfo repr: keep the file.
    return StartupError(_LOCATION.sub(r'in \1', str(exc)))


def validate(conf) -> None:
    """Read every registered option, so a bad value fails at start-up.

    oslo.config converts values when they are first read, which would
    otherwise turn a typo into a traceback deep inside a service.
    """
    for name in list(conf):
        try:
            value = conf[name]
        except cfg.ConfigFileValueError as exc:
            raise _value_error('DEFAULT', name, exc) from None
        if isinstance(value, cfg.ConfigOpts.GroupAttr):
            for opt in list(value):
                try:
                    value[opt]
                except cfg.ConfigFileValueError as exc:
                    raise _value_error(name, opt, exc) from None


def _value_error(group, name, exc) -> StartupError:
    where = _LOCATION.search(str(exc))
    reason = str(exc).split(' is not valid: ', 1)[-1]
    return StartupError('Invalid value of [%s] %s%s: %s' % (
        group, name, ' in %s' % where.group(1) if where else '', reason))


def setup(argv, default_log_levels=None, use_stderr=False, messaging=True):
    """Parse the command line and config files, set up logging.

    ``use_stderr`` keeps a command's stdout for its own output (JSON).
    ``messaging=False`` leaves oslo.messaging unloaded (and its options
    unregistered) until ``messaging_options`` registers them, for
    commands that may never use the bus.
    Raises StartupError for a bad config file or option value.
    """
    logging.register_options(CONF)
    if use_stderr:
        CONF.set_default('use_stderr', True)
    if messaging:
        messaging_options(CONF)
    if default_log_levels:
        logging.set_defaults(default_log_levels=default_log_levels)
    try:
        CONF(argv, project=PROJECT, version=version.version_string())
        validate(CONF)
    except (cfg.Error, OSError) as exc:
        raise config_error(exc) from None
    logging.setup(CONF, PROJECT)
    global _LOGGING_READY
    _LOGGING_READY = True
    return CONF


def messaging_options(conf) -> None:
    """Register oslo.messaging's options (osbackup's defaults) and check them.

    Safe once the config files are parsed: their values are read when
    first used.
    """
    from osbackup import rpc
    rpc.set_defaults(conf)
    if 'config_file' in conf:
        validate(conf)


def has_config(argv) -> bool:
    """Whether ``argv`` names a config or one is in the standard places.

    For a command line that could not be parsed.
    """
    if any(a.startswith('--config-') for a in argv):
        return True
    return bool(cfg.find_config_files(project=PROJECT) or
                cfg.find_config_dirs(project=PROJECT))


def _logs_elsewhere(conf) -> bool:
    if not _LOGGING_READY:
        return False
    try:
        return bool(conf.log_file or conf.log_dir or conf.use_syslog
                    or conf.use_journal)
    except cfg.Error:
        return False


def fail(exc: StartupError):
    """Say why the command cannot start, on stderr, and exit."""
    if _logs_elsewhere(CONF):
        LOG.error('Cannot start: %s', exc.message)
    print('ERROR: %s' % exc.message, file=sys.stderr, flush=True)
    sys.exit(exc.code)


@contextlib.contextmanager
def startup_errors():
    """Turn the errors a user can cause at start-up into StartupError."""
    from oslo_db import exception as db_exc
    try:
        yield
    except StartupError:
        raise
    except cfg.Error as exc:
        raise config_error(exc) from None
    except exception.OsbackupError as exc:
        # A missing or unsafe key file, an unknown driver...
        raise StartupError(exc.message) from None
    except db_exc.DBError as exc:
        raise database_error(exc) from None


def database_error(exc: Exception) -> StartupError:
    """The one-line form of an oslo.db error (the database, the reason)."""
    from osbackup.db import engine
    return StartupError('Cannot use the catalogue database %s: %s'
                        % (_masked_db(CONF), engine.reason(exc)), EXIT_FAILED)


def _masked_db(conf) -> str:
    from sqlalchemy.engine import url as sa_url
    try:
        return sa_url.make_url(conf.database.connection).render_as_string(
            hide_password=True)
    except Exception:
        return '(see [database] connection)'


def daemon_main(service_factory, argv=None):
    """Run a long-lived osbackup service until SIGTERM."""
    from osbackup import rpc
    from osbackup import service
    error = None
    try:
        conf = setup(sys.argv[1:] if argv is None else argv)
        with startup_errors():
            rpc.init(conf)
            daemon = service_factory(conf)
    except StartupError as exc:
        error = exc
    if error is not None:
        # Outside the except block: the log line carries no traceback.
        rpc.cleanup()
        fail(error)
    try:
        service.run([daemon])
    finally:
        if not rpc.cleanup_within(CLEANUP_WAIT):
            LOG.info('Broker connections still closing after %d s; '
                     'exiting anyway', CLEANUP_WAIT)
    service.exit_after(0)


#: Seconds a stopping daemon waits for its broker connections to close:
#: oslo.messaging's reply listener and a vanished broker can each hold
#: that up for many seconds, and the process exits right after anyway.
CLEANUP_WAIT = 2

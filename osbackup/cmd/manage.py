"""osbackup-manage: parse the command line and run one action."""

import argparse
import sys

from oslo_config import cfg
from oslo_log import log as logging

from osbackup.cmd import common
from osbackup import exception
from osbackup import manage
from osbackup.manage import categories
from osbackup.manage import environment

LOG = logging.getLogger(__name__)

#: Options of the whole command an operator may also give after the
#: action ("backup list --config-file F"): those taking a value, then flags.
_GLOBAL_WITH_VALUE = ('--config-file', '--config-dir', '--log-file',
                      '--log-dir', '--log-config-append')
_GLOBAL_FLAGS = ('--debug', '-d', '--nodebug')


class _ActionParser(argparse.ArgumentParser):
    """An action's parser: it reports unknown options with its own usage.

    argparse hands a subcommand's leftovers to the top-level parser,
    whose usage lists every logging option but none of the action's.
    """

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error('unrecognized arguments: %s' % ' '.join(extras))
        return namespace, extras


def add_command_parsers(subparsers):
    for name, cls in sorted(categories.categories().items()):
        cat_parser = subparsers.add_parser(name, help=(cls.__doc__ or '')
                                           .strip().splitlines()[0])
        actions = cat_parser.add_subparsers(dest='action', metavar='ACTION',
                                            parser_class=_ActionParser)
        actions.required = True
        for action, fn in manage.methods_of(cls(None)):
            doc = (fn.__doc__ or '').strip()
            parser = actions.add_parser(manage.action_name(action),
                                        help=doc.splitlines()[0] if doc
                                        else None, description=doc)
            for flags, kwargs in getattr(fn, 'args', []):
                parser.add_argument(*flags, **kwargs)
            parser.set_defaults(action_fn=action)


category_opt = cfg.SubCommandOpt('category', title='Command categories',
                                 help='Available categories',
                                 handler=add_command_parsers)


def _dest(flags, kwargs):
    if 'dest' in kwargs:
        return kwargs['dest']
    return flags[-1].lstrip('-').replace('-', '_')


def _action_kwargs(conf, fn):
    return {dest: getattr(conf.category, dest)
            for dest in (_dest(f, kw) for f, kw in getattr(fn, 'args', []))}


def hoist_global_options(argv: list) -> list:
    """Move the command's own options given after the action to the front.

    ``osbackup-manage backup list --config-file F`` then means what
    ``osbackup-manage --config-file F backup list`` does.
    """
    front, rest = [], []
    args = iter(argv)
    for arg in args:
        name = arg.split('=', 1)[0]
        if arg == '--':
            rest.append(arg)
            rest.extend(args)
        elif name in _GLOBAL_WITH_VALUE:
            front.append(arg)
            value = None if '=' in arg else next(args, None)
            if value is not None:
                front.append(value)
        elif arg in _GLOBAL_FLAGS:
            front.append(arg)
        else:
            rest.append(arg)
    return front + rest


def main(argv=None):
    conf = common.CONF
    conf.register_cli_opt(category_opt)
    argv = hoist_global_options(sys.argv[1:] if argv is None else argv)
    try:
        return _run(conf, argv)
    finally:
        conf.reset()
        conf.unregister_opt(category_opt)


def _run(conf, argv):
    try:
        common.setup(argv, default_log_levels=logging.get_default_log_levels()
                     + ['osbackup=WARNING', 'stevedore=WARNING',
                        'alembic=WARNING',
                        # Loaded with oslo.messaging, after logging is set.
                        'oslo_service.backend=WARNING',
                        # Broker trouble is this command's own one-line
                        # error; the driver's retry log is noise here.
                        'oslo.messaging=CRITICAL'],
                     use_stderr=True, messaging=False)
    except common.StartupError as exc:
        print('ERROR: %s' % exc.message, file=sys.stderr)
        return exc.code
    except SystemExit as exc:
        # A usage error: still say which mode a command would run in.
        if exc.code and not common.has_config(argv):
            print(environment.all_in_one_notice([]), file=sys.stderr)
        raise
    env = environment.Environment(conf)
    if env.notice():
        print(env.notice(), file=sys.stderr)
    category = categories.categories()[conf.category.name](env)
    fn = getattr(category, conf.category.action_fn)
    try:
        return fn(**_action_kwargs(conf, fn))
    except exception.OsbackupError as exc:
        print('ERROR: %s' % exc.message, file=sys.stderr)
        return manage.EXIT_USAGE if isinstance(
            exc, (exception.InvalidInput, exception.NotFound,
                  exception.Conflict)) else manage.EXIT_FAILED
    except Exception as exc:
        if not _is_db_error(exc):
            raise
        print('ERROR: %s' % common.database_error(exc).message,
              file=sys.stderr)
        return manage.EXIT_FAILED
    except KeyboardInterrupt:
        print('Interrupted', file=sys.stderr)
        return 130
    finally:
        env.close()


def _is_db_error(exc: Exception) -> bool:
    """An oslo.db error; oslo.db is not imported unless a command used it."""
    db_exc = sys.modules.get('oslo_db.exception')
    return db_exc is not None and isinstance(exc, db_exc.DBError)


if __name__ == '__main__':
    sys.exit(main())

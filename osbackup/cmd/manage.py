"""osbackup-manage: parse the command line and run one action."""

import sys

from oslo_config import cfg
from oslo_log import log as logging

from osbackup.cmd import common
from osbackup import exception
from osbackup import manage
from osbackup.manage import categories
from osbackup.manage import environment

LOG = logging.getLogger(__name__)


def add_command_parsers(subparsers):
    for name, cls in sorted(categories.categories().items()):
        cat_parser = subparsers.add_parser(name, help=(cls.__doc__ or '')
                                           .strip().splitlines()[0])
        actions = cat_parser.add_subparsers(dest='action', metavar='ACTION')
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


def main(argv=None):
    conf = common.CONF
    conf.register_cli_opt(category_opt)
    argv = sys.argv[1:] if argv is None else argv
    try:
        common.setup(argv, default_log_levels=logging.get_default_log_levels()
                     + ['osbackup=WARNING', 'oslo_messaging=ERROR',
                        'stevedore=WARNING', 'alembic=WARNING'],
                     use_stderr=True)
    except cfg.Error as exc:
        print('ERROR: %s' % exc, file=sys.stderr)
        return manage.EXIT_USAGE
    env = environment.Environment(conf)
    category = categories.categories()[conf.category.name](env)
    fn = getattr(category, conf.category.action_fn)
    try:
        return fn(**_action_kwargs(conf, fn))
    except exception.OsbackupError as exc:
        print('ERROR: %s' % exc.message, file=sys.stderr)
        return manage.EXIT_USAGE if isinstance(
            exc, (exception.InvalidInput, exception.NotFound,
                  exception.Conflict)) else manage.EXIT_FAILED
    except KeyboardInterrupt:
        print('Interrupted', file=sys.stderr)
        return 130
    finally:
        env.close()
        conf.reset()
        conf.unregister_opt(category_opt)


if __name__ == '__main__':
    sys.exit(main())

"""osbackup-manage: the administrator's command line.

``osbackup-manage [--config-file F] <category> <action> [options]``. Each
category is a class in this package whose public methods are actions; the
``args`` decorator declares an action's options (the nova-manage way).
Actions return an exit code: 0 success, 1 the operation failed, 2 bad
input.
"""

import functools

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def args(*flags, **kwargs):
    """Declare one argparse argument of an action."""
    def decorator(func):
        func.__dict__.setdefault('args', []).insert(0, (flags, kwargs))
        return func
    return decorator


def format_arg(func):
    """Add ``--format table|json`` and its ``--json`` alias to an action."""
    func = args('--format', dest='fmt', choices=['table', 'json'],
                default='table',
                help='Output format (default: table).')(func)
    return args('--json', dest='fmt', action='store_const', const='json',
                default='table', help='Same as --format json.')(func)


def methods_of(obj) -> list:
    """Public methods of a category object: its actions."""
    return [(name, getattr(obj, name)) for name in sorted(dir(obj))
            if not name.startswith('_') and callable(getattr(obj, name))]


def action_name(name: str) -> str:
    return name.replace('_', '-')


def with_env(func):
    """Give an action an Environment and close it afterwards."""
    @functools.wraps(func)
    def wrapper(self, *a, **kw):
        try:
            return func(self, *a, **kw)
        finally:
            self.env.close()
    return wrapper

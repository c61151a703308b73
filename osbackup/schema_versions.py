"""Alembic revisions: which of two schema versions of a database is newer.

A service's migrations are files under its package's migrations
directory, each naming its ``revision`` and its ``down_revision`` (None
for the first, a tuple after a merge). From them, revision A is older
than B when A is an ancestor of B. A database's version is the set of
rows of its ``alembic_version`` table (one per head; usually one).
"""

import ast
import os

#: compare() results.
SAME = 'same'
NEWER = 'newer'         # the second is a descendant of the first
OLDER = 'older'         # the second is an ancestor of the first
UNKNOWN = 'unknown'     # not in the graph, or on diverging branches


def _value(node):
    """A str, None, or tuple of str from an assignment's value."""
    value = ast.literal_eval(node)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)) and all(isinstance(v, str)
                                                for v in value):
        return tuple(value)
    raise ValueError('not a revision')


def parse(source: str) -> tuple[str, tuple[str, ...]] | None:
    """(revision, down revisions) of one migration file, or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and \
                target.id in ('revision', 'down_revision'):
            try:
                found[target.id] = _value(value)
            except ValueError:
                return None
    revision = found.get('revision')
    if not isinstance(revision, str) or 'down_revision' not in found:
        return None
    down = found['down_revision']
    return revision, (() if down is None else
                      (down,) if isinstance(down, str) else down)


def read_graph(directories: list[str]) -> dict[str, tuple[str, ...]]:
    """{revision: down revisions} of the migration files found.

    Directories that do not exist are skipped; subdirectories are read
    too (some services keep one per branch).
    """
    graph = {}
    for top in directories:
        for dirpath, _dirs, files in os.walk(top):
            for name in sorted(files):
                if not name.endswith('.py'):
                    continue
                try:
                    with open(os.path.join(dirpath, name)) as f:
                        found = parse(f.read())
                except (OSError, UnicodeDecodeError):
                    continue
                if found:
                    graph[found[0]] = found[1]
    return graph


def _ancestors(graph, revisions) -> set[str] | None:
    """Every revision at or below ``revisions``; None if one is unknown."""
    seen, todo = set(), list(revisions)
    while todo:
        rev = todo.pop()
        if rev in seen:
            continue
        if rev not in graph:
            return None
        seen.add(rev)
        todo.extend(graph[rev])
    return seen


def compare(graph: dict, first: list[str], second: list[str]) -> str:
    """How the version ``second`` stands to ``first`` (SAME, NEWER, ...)."""
    if set(first) == set(second):
        return SAME
    below_first = _ancestors(graph, first)
    below_second = _ancestors(graph, second)
    if below_first is None or below_second is None:
        return UNKNOWN
    if below_first < below_second:
        return NEWER
    if below_second < below_first:
        return OLDER
    return UNKNOWN

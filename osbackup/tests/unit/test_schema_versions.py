"""Alembic revision graphs: which of two schema versions is newer."""

import os

import fixtures

from osbackup import schema_versions as sv
from osbackup.tests import base

MIGRATION = '''"""%(doc)s

Revision ID: %(rev)s
"""
from alembic import op

%(assign)s


def upgrade():
    op.add_column('t', 'c')
'''


def write_migration(directory, rev, down, annotated=False, name=None):
    os.makedirs(directory, exist_ok=True)
    if annotated:
        assign = ('revision: str = %r\ndown_revision: str | None = %r'
                  % (rev, down))
    else:
        assign = 'revision = %r\ndown_revision = %r' % (rev, down)
    with open(os.path.join(directory, name or '%s_x.py' % rev), 'w') as f:
        f.write(MIGRATION % {'doc': 'a migration', 'rev': rev,
                             'assign': assign})


class GraphTest(base.TestCase):

    def test_parse_forms(self):
        self.assertEqual(('b', ('a',)), sv.parse(
            "revision = 'b'\ndown_revision = 'a'\n"))
        self.assertEqual(('a', ()), sv.parse(
            "revision: str = 'a'\ndown_revision: str | None = None\n"))
        self.assertEqual(('m', ('b', 'c')), sv.parse(
            "revision = 'm'\ndown_revision = ('b', 'c')\n"))
        for source in ("revision = 'a'\n", 'revision = f()\n'
                       'down_revision = None\n', 'not python (',
                       "down_revision = 'a'\n"):
            self.assertIsNone(sv.parse(source), source)

    def test_read_graph_walks_subdirectories_and_skips_the_rest(self):
        top = self.useFixture(fixtures.TempDir()).path
        write_migration(os.path.join(top, 'v'), 'a', None)
        write_migration(os.path.join(top, 'v', 'expand'), 'b', 'a',
                        annotated=True)
        with open(os.path.join(top, 'v', 'README'), 'w') as f:
            f.write("revision = 'z'\ndown_revision = None\n")
        with open(os.path.join(top, 'v', 'env.py'), 'w') as f:
            f.write('import alembic\n')
        self.assertEqual({'a': (), 'b': ('a',)}, sv.read_graph(
            [os.path.join(top, 'v'), os.path.join(top, 'missing')]))

    def test_compare(self):
        # a - b - c - m (merge of c and d); a - d
        graph = {'a': (), 'b': ('a',), 'c': ('b',), 'd': ('a',),
                 'm': ('c', 'd')}
        for first, second, expected in (
                (['b'], ['b'], sv.SAME),
                (['a'], ['c'], sv.NEWER),
                (['c'], ['a'], sv.OLDER),
                (['c'], ['d'], sv.UNKNOWN),     # diverging branches
                (['c', 'd'], ['m'], sv.NEWER),  # two heads, then merged
                (['m'], ['c', 'd'], sv.OLDER),
                (['b'], ['zz'], sv.UNKNOWN),    # not in the graph
                (['zz'], ['zz'], sv.SAME)):
            self.assertEqual(expected, sv.compare(graph, first, second),
                             (first, second))
        self.assertEqual(sv.UNKNOWN, sv.compare({}, ['a'], ['b']))

"""The configuration snippets of the README and doc/source paste as is.

Every literal block whose first line is an ini section header is parsed
with oslo.config's own parser; it must parse, hold no value with an inline
comment (oslo.config keeps `` # ...`` as part of the value) and name only
options registered in the groups osbackup's sample config knows.
"""

import configparser
import glob
import importlib.metadata
import os
import re
import tempfile

from oslo_config import cfg

from osbackup.tests import base

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                    '..'))
GENERATOR_CONF = os.path.join(ROOT, 'etc', 'osbackup',
                              'osbackup-config-generator.conf')

# "[agent]" opens an oslo.config file; DevStack's "[[local|localrc]]" does
# not, and a line such as "[mysql]   # comment" still counts as one (and
# fails to parse, as it does for oslo.config).
_INI_HEADER = re.compile(r'^\[[^\[]')
_DIRECTIVE = re.compile(r'^(\s*)\.\. (code-block|code|sourcecode)::')


def doc_files():
    """README.rst and every page under doc/source."""
    files = [os.path.join(ROOT, 'README.rst')]
    files += sorted(glob.glob(os.path.join(ROOT, 'doc', 'source', '**',
                                           '*.rst'), recursive=True))
    return files


_LIST_ITEM = re.compile(r'^\s*(\d+\.|#\.|[-*+])\s+')


def _indent(line):
    return len(line) - len(line.lstrip())


def _text_indent(line):
    # The text of "1. Step::" starts after the list marker.
    item = _LIST_ITEM.match(line)
    return item.end() if item else _indent(line)


def literal_blocks(text):
    """Yield (line number, dedented lines) of every literal block.

    A block follows a paragraph ending in ``::`` or a code directive, and
    holds the lines indented deeper than that marker line.
    """
    lines = text.split('\n')
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = _DIRECTIVE.match(line)
        if not (directive or line.rstrip().endswith('::')):
            i += 1
            continue
        marker = _text_indent(line)
        i += 1
        block = []
        start = None
        while i < len(lines):
            body = lines[i]
            if body.strip() and _indent(body) <= marker:
                break
            if directive and start is None and body.strip().startswith(':'):
                i += 1      # a directive option such as ":linenos:"
                continue
            if body.strip() and start is None:
                start = i + 1
            if start is not None:
                block.append(body)
            i += 1
        while block and not block[-1].strip():
            block.pop()
        if block:
            depth = min(_indent(b) for b in block if b.strip())
            yield start, [b[depth:] for b in block]


def ini_blocks():
    """Yield (where, lines) of every ini literal block of the docs."""
    for path in doc_files():
        with open(path) as f:
            text = f.read()
        for lineno, block in literal_blocks(text):
            if _INI_HEADER.match(block[0]):
                where = '%s:%d' % (os.path.relpath(path, ROOT), lineno)
                yield where, block


def parse_ini(lines):
    """Parse like oslo.config: {section: {key: [values]}} or ParseError."""
    sections = {}
    with tempfile.NamedTemporaryFile('w', suffix='.conf') as f:
        f.write('\n'.join(lines) + '\n')
        f.flush()
        cfg.ConfigParser(f.name, sections).parse()
    return sections


def known_options():
    """{group: {option names}} of every namespace of the sample config."""
    generator = configparser.ConfigParser(strict=False)
    generator.read_string(_multi_value_ini(GENERATOR_CONF))
    namespaces = generator['DEFAULT']['namespace'].split()
    entry_points = {ep.name: ep for ep in
                    importlib.metadata.entry_points(group='oslo.config.opts')}
    known = {}
    for namespace in namespaces:
        for group, opts in entry_points[namespace].load()():
            name = getattr(group, 'name', group) or 'DEFAULT'
            names = known.setdefault(name, set())
            for opt in opts:
                names.add(opt.dest)
                names.add(opt.name)
                names.update(d.name for d in opt.deprecated_opts
                             if d.name and d.group in (None, name))
    return known


def _multi_value_ini(path):
    # The generator's config repeats "namespace ="; join the values.
    values = []
    with open(path) as f:
        for line in f:
            key, sep, value = line.partition('=')
            if sep and key.strip() == 'namespace':
                values.append(value.strip())
    return '[DEFAULT]\nnamespace = %s\n' % ' '.join(values)


def problems(where, lines, known):
    """Every reason this block would not work pasted into a config file."""
    try:
        sections = parse_ini(lines)
    except cfg.ParseError as exc:
        return ['%s: does not parse: %s' % (where, exc)]
    found = []
    for section, options in sections.items():
        for key, values in options.items():
            for value in values:
                if re.search(r'\s[#;]', value):
                    found.append('%s: [%s] %s has an inline comment, which '
                                 'oslo.config keeps in the value: %r'
                                 % (where, section, key, value))
            if section in known and key not in known[section]:
                found.append('%s: [%s] %s is not an option' % (where,
                                                               section, key))
    return found


class TestLiteralBlocks(base.TestCase):

    def test_finds_indented_blocks_after_double_colon(self):
        text = ('Intro::\n\n    [DEFAULT]\n    a = 1\n\n'
                '1. Step, in a list::\n\n       [agent]\n       b = 2\n'
                '   more text\n\n.. code-block:: ini\n   :caption: x\n\n'
                '   [storage]\n')
        blocks = list(literal_blocks(text))
        self.assertEqual([(3, ['[DEFAULT]', 'a = 1']),
                          (8, ['[agent]', 'b = 2']),
                          (15, ['[storage]'])], blocks)

    def test_inline_comments_and_bad_headers_are_problems(self):
        known = {'storage': {'local_path'}, 'mysql': {'user'}}
        self.assertEqual(
            [], problems('x', ['[storage]', '# a comment',
                               'local_path = /srv'], known))
        self.assertIn('inline comment', problems(
            'x', ['[storage]', 'local_path = /srv   # or NFS'], known)[0])
        self.assertIn('does not parse', problems(
            'x', ['[mysql]   # on the DB node', 'user = root'], known)[0])
        self.assertIn('is not an option', problems(
            'x', ['[storage]', 'local_pth = /srv'], known)[0])

    def test_known_options_hold_osbackup_and_library_groups(self):
        known = known_options()
        self.assertIn('root_path', known['agent'])
        self.assertIn('transport_url', known['DEFAULT'])
        self.assertIn('ssl_ca_file', known['oslo_messaging_rabbit'])


class TestDocConfigBlocks(base.TestCase):

    def test_every_ini_block_pastes_into_a_config_file(self):
        blocks = list(ini_blocks())
        # The fleet set-up alone has two; finding none means the scanner
        # broke, not that the docs are fine.
        self.assertGreater(len(blocks), 3)
        known = known_options()
        found = []
        for where, lines in blocks:
            found.extend(problems(where, lines, known))
        self.assertEqual([], found, '\n'.join(found))

"""The text of a mysqldump: find its sections while it streams.

Shared by the dump (one artifact per database), the load (tables loaded
side by side) and the verification of an artifact.
"""

import re

from osbackup import exception

# Marker and footer lines are short; longer lines are data, passed on in
# pieces instead of being held whole.
MAX_LINE = 64 * 1024
MAX_HEADER = 16 * 1024 * 1024
TRAILER = b'-- Dump completed'
# Lines worth a closer look (comments and conditional statements; rows
# never start so); the rest is passed on unexamined.
_CANDIDATE_STARTS = (b'-- ', b'/*!')
_MARKER_RE = re.compile(rb'-- Current Database: `((?:[^`]|``)+)`\r?\n?\Z')
_FOOTER_RE = re.compile(rb'(?:/\*!\d+ SET \w+=@OLD_\w+(?:, \w+=@OLD_\w+)* '
                        rb'\*/;|-- Dump completed[^\n]*)\r?\n?\Z')
# Titles of the blocks of a dump (restore side): tables load in parallel,
# the other blocks serially.
_TABLE_TITLE_RE = re.compile(
    rb'-- (Table structure|Dumping data) for table (`(?:[^`]|``)+`)\r?\n?\Z')
_LOCK_RE = re.compile(
    rb'(?:LOCK TABLES `(?:[^`]|``)+` WRITE|UNLOCK TABLES);\r?\n?\Z')
_TITLE_RE = re.compile(
    rb'-- (?:Current Database: `|Temporary table structure for view `|'
    rb'Final view structure for view `|Sequence structure for |'
    rb"Dumping routines for database '|Dumping events for database '|"
    rb'Flush Grant Tables)')
# MariaDB 10.11 prints it at the end of the last section, not the header.
_GTID_RE = re.compile(rb"-- SET GLOBAL gtid_slave_pos='([^']*)'")


class _Renamer:
    """Point a one-database dump's CREATE DATABASE and USE at another name.

    Works on a stream: the statements are short and start a line, so a
    tail of the previous chunk is held back in case one is cut in two.
    """

    HOLD = 512

    def __init__(self, old: str, new: str):
        old_q = ('`%s`' % old.replace('`', '``')).encode()
        new_q = ('`%s`' % new).encode()
        self._subs = [
            (b'\nUSE ' + old_q + b';', b'\nUSE ' + new_q + b';'),
            (b'IF NOT EXISTS*/ ' + old_q, b'IF NOT EXISTS*/ ' + new_q),
            (b'\nCREATE DATABASE ' + old_q, b'\nCREATE DATABASE ' + new_q)]
        self._held = b'\n'

    def __call__(self, chunk: bytes, final: bool = False) -> bytes:
        data = self._held + chunk
        for old, new in self._subs:
            data = data.replace(old, new)
        if final:
            self._held = b''
            return data
        self._held = data[-self.HOLD:]
        return data[:-self.HOLD]


class _LineScanner:
    """Find the few interesting lines of a stream of SQL, fast.

    Only lines starting with one of ``STARTS`` are handed to ``_line``
    whole; they are found with ``bytes.find`` over whole chunks, and
    everything between them (the rows) goes to ``_data`` as memoryview
    slices of the chunk, never copied or looked at line by line. A partial
    line at the end of a chunk is held only while it may be such a line;
    one longer than MAX_LINE is data after all.
    """

    STARTS = _CANDIDATE_STARTS

    def __init__(self):
        # re finds these faster than bytes.find does ('\n' is frequent).
        self._find = re.compile(b'\n(?:%s)' % b'|'.join(
            re.escape(start) for start in self.STARTS)).search
        self._held = bytearray()    # a partial line that may be a candidate
        self._midline = False       # inside a data line passed on as is

    def _line(self, line: bytes) -> None:
        raise NotImplementedError

    def _data(self, data) -> None:
        raise NotImplementedError

    def _candidate(self, data) -> bool:
        """Whether a line starting with ``data`` may be a candidate."""
        head = bytes(data[:max(map(len, self.STARTS))])
        return any(head[:len(s)] == s[:len(head)] for s in self.STARTS)

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        view = memoryview(chunk)
        pos = 0
        if self._held or self._midline:
            end = chunk.find(b'\n') + 1
            if not end:
                if self._held:
                    self._hold(view)
                else:
                    self._data(view)
                return
            if self._held:
                self._held += view[:end]
                line = bytes(self._held)
                self._held.clear()
                self._line(line)
            else:
                self._data(view[:end])
                self._midline = False
            pos = end
        self._scan(chunk, view, pos)

    def _scan(self, chunk, view, pos):
        """Route ``chunk[pos:]``, which starts at a line start."""
        size = len(chunk)
        start = pos if pos == 0 and chunk.startswith(self.STARTS) else None
        while True:
            if start is None:
                # pos - 1 is the newline ending the previous line.
                found = self._find(chunk, max(pos - 1, 0))
                if found is None:
                    break
                start = found.start() + 1
            if start > pos:
                self._data(view[pos:start])
            end = chunk.find(b'\n', start) + 1
            if not end:
                self._hold(view[start:])
                return
            self._line(chunk[start:end])
            pos, start = end, None
        last = chunk.rfind(b'\n', pos) + 1
        if last > pos:
            self._data(view[pos:last])
            pos = last
        if pos < size:
            if self._candidate(view[pos:]):
                self._hold(view[pos:])
            else:
                self._data(view[pos:])
                self._midline = True

    def _hold(self, data):
        self._held += data
        candidate = self._candidate(self._held)
        if len(self._held) > MAX_LINE or not candidate:
            # Its first piece is looked at, the rest streams through.
            held = bytes(self._held)
            self._held.clear()
            (self._line if candidate else self._data)(held)
            self._midline = True

    def _flush_held(self):
        """Hand on a last line that has no newline."""
        if self._held:
            line = bytes(self._held)
            self._held.clear()
            self._line(line)


class _Splitter(_LineScanner):
    """Route a mysqldump stream into one sink per database.

    The header (before the first ``-- Current Database`` marker) and the
    footer (the restore-settings lines and trailer after the last section)
    are small and held; section bytes go straight to their database's sink.
    A database may have several sections (views come in a second pass).
    """

    def __init__(self, open_sink, expected=None):
        super().__init__()
        self._open_sink = open_sink
        self._expected = expected
        self.header = bytearray()
        self.footer = bytearray()
        self.sinks = {}
        self.sizes = {}
        self.completed = False
        self.gtid = None
        self._current = None
        self._in_footer = False

    def finish(self) -> None:
        """Route the last bytes and append the footer to every sink."""
        self._flush_held()
        for name in self.sinks:
            self._write(name, bytes(self.footer))

    def _line(self, line):
        marker = _MARKER_RE.match(line)
        if marker:
            self._section(marker.group(1).replace(b'``', b'`').decode(
                'utf-8', 'surrogateescape'))
        elif self._current is not None and _FOOTER_RE.match(line):
            self._in_footer = True
            self.footer += line
            self.completed = line.startswith(TRAILER)
            return
        elif gtid := _GTID_RE.match(line):
            self.gtid = gtid.group(1).decode()
        self._data(line)

    def _section(self, name):
        self._unfooter()
        if name not in self.sinks:
            if self._expected is not None and name not in self._expected:
                raise exception.DumpFailed(
                    'mysqldump wrote database %s, which was not asked for'
                    % name)
            self.sinks[name] = self._open_sink(name)
            self.sizes[name] = 0
            self._write(name, bytes(self.header))
        self._current = name

    def _unfooter(self):
        # More dump followed what looked like the footer: it was part of
        # the current section after all.
        if self._in_footer:
            pending = bytes(self.footer)
            self.footer.clear()
            self._in_footer = self.completed = False
            self._write(self._current, pending)

    def _data(self, data):
        if not data:
            return
        if self._current is None:
            self.header += data
            if len(self.header) > MAX_HEADER:
                raise exception.DumpFailed(
                    'mysqldump output has no "-- Current Database" section')
            return
        if self._in_footer:
            if not bytes(data).strip():
                self.footer += data
                return
            self._unfooter()
        self._write(self._current, data)

    def _write(self, name, data):
        self.sinks[name].write(data)
        self.sizes[name] += len(data)


class _Sections(_LineScanner):
    """Cut one database's dump into numbered units as it streams.

    mysqldump writes each table as a titled block: "-- Table structure
    for table `t`" (DROP, CREATE), "-- Dumping data for table `t`" (LOCK,
    INSERTs, UNLOCK) and then, untitled, the table's triggers. Such a
    table unit runs until the next title. Unit 0 is all before the first
    table: the header of session settings, CREATE DATABASE and USE. Every
    other titled block (views, routines, events, sequences, grants, the
    second "-- Current Database" pass) is serial. Unknown comment lines
    are no boundary. ``pieces`` collects (unit, table or None, bytes) for
    the caller to take after each feed.
    """

    STARTS = (b'-- ', b'LOCK TABLES `', b'UNLOCK TABLES;')

    def __init__(self):
        super().__init__()
        self.header = bytearray()   # the session settings, for workers
        self.header_ok = False      # a "-- Current Database" ended it
        self.unit = 0
        self.table = None
        self.pieces = []

    def finish(self) -> None:
        self._flush_held()

    def _line(self, line):
        if self.table is not None and _LOCK_RE.match(line):
            # A table's LOCK TABLES also locks the tables its foreign
            # keys link it to, as they are at that moment; a table
            # (re)created by another client in between fails its INSERTs
            # ("was not locked with LOCK TABLES"). The lock only saves
            # key writes on MyISAM and Aria: dropped.
            return
        title = _TABLE_TITLE_RE.match(line)
        if title:
            name = title.group(2)
            if title.group(1) != b'Dumping data' or name != self.table:
                self.unit += 1
                self.table = name
        elif _TITLE_RE.match(line):
            if not self.header_ok and line.startswith(b'-- Current '):
                self.header_ok = self.unit == 0 and len(
                    self.header) <= MAX_HEADER
            if self.table is not None:
                self.unit += 1
                self.table = None
        self._data(line)

    def _data(self, data):
        if not self.header_ok and self.unit == 0 and \
                len(self.header) <= MAX_HEADER:
            self.header += data
        self.pieces.append((self.unit, self.table, data))

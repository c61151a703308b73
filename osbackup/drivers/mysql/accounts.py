"""The server's accounts and grants, an artifact of their own.

A dump of the ``mysql`` system schema does not load into another server
version (its tables change between releases); MariaDB's portable form is
``mariadb-dump --system=users``: CREATE USER, CREATE ROLE and GRANT
statements. With ``--insert-ignore`` it writes ``CREATE USER IF NOT
EXISTS`` (and ``CREATE ROLE IF NOT EXISTS``), so loading it into a server
where an account exists does not fail: the account stays, and the GRANT
statements give it the backup's password and privileges (grants are
added; none is taken away).

Each statement is one line, about one account or role (its subject: the
account created, or the grantee). Only the accounts ``[mysql] accounts``
selects are kept; by default all but the server's own, which a new
server's installation makes itself. The statements mariadb-dump adds
around them to create roles (its ``mariadb_dump_import_role``) always
stay.
"""

import fnmatch
import re
import subprocess

from osbackup import artifact_kinds
from osbackup.drivers import base
from osbackup.drivers.mysql import spawn
from osbackup import exception
from osbackup import streams

#: Artifact name of the accounts of a server.
NAME = 'accounts'
#: Its storage key's ending: never that of a database named accounts
#: (``<database>.sql.zst``).
SUFFIX = '.users.sql.zst'
#: Accounts of the server itself, left out unless [mysql] accounts names
#: them.
SYSTEM_ACCOUNTS = ('root', 'mariadb.sys', 'mysql', 'debian-sys-maint',
                   'PUBLIC')
#: Subjects of the statements mariadb-dump uses to create roles.
_MECHANISM = ('mariadb_dump_import_role', 'CURRENT_USER()', 'CURRENT_USER')
DUMP_ARGS = ('--system=users', '--insert-ignore')
_VERSIONED = re.compile(r'^/\*M?!\d+\s+(.*?)\s*\*/;?\s*$')
_TOKEN = re.compile(r"`(?:[^`]|``)*`|'(?:[^'\\]|\\.|'')*'|[^\s`'@,;]+|@")
_TRAILER = b'\n-- Dump completed'
_SECTION = b'\n-- Current Database: '


def _unquote(token: str) -> str:
    if token[:1] == '`':
        return token[1:-1].replace('``', '`')
    if token[:1] == "'":
        return re.sub(r"\\(.)|''", lambda m: m.group(1) or "'", token[1:-1])
    return token


def subject(line: str) -> tuple[str, str | None, str] | None:
    """(statement, name, host) of an account statement; None for others.

    ``statement`` is ``user``, ``role`` (the account or role created) or
    ``grant`` (its grantee: GRANT, SET DEFAULT ROLE, ALTER USER); host is
    None for a role or a bare name.
    """
    body = line.strip()
    match = _VERSIONED.match(body)
    if match:
        body = match.group(1)
    words = _TOKEN.findall(body.rstrip(';'))
    upper = [w.upper() for w in words]
    if upper[:2] in (['CREATE', 'USER'], ['CREATE', 'ROLE'],
                     ['ALTER', 'USER']):
        kind = upper[1].lower() if upper[0] == 'CREATE' else 'grant'
        at = 2
        if upper[2:5] == ['IF', 'NOT', 'EXISTS']:
            at = 5
    elif upper[:1] == ['GRANT'] and 'TO' in upper:
        kind, at = 'grant', upper.index('TO') + 1
    elif upper[:3] == ['SET', 'DEFAULT', 'ROLE'] and 'FOR' in upper:
        kind, at = 'grant', upper.index('FOR') + 1
    else:
        return None
    if at >= len(words):
        return None
    name = _unquote(words[at])
    host = _unquote(words[at + 2]) if words[at + 1:at + 2] == ['@'] and \
        at + 2 < len(words) else None
    return kind, name, host


class Selection:
    """Which accounts and roles the artifact keeps ([mysql] accounts)."""

    def __init__(self, patterns: list[str]):
        self.patterns = [p for p in patterns if p]

    def __call__(self, name: str) -> bool:
        if name in _MECHANISM:
            return True
        if self.patterns:
            return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)
        return name not in SYSTEM_ACCOUNTS


def select(text: str, wanted: Selection) -> tuple[str, list[str]]:
    """The dump with the statements of unwanted accounts left out.

    Also returns the accounts (``user@host``) and roles (``role``) kept.
    """
    out, kept = [], []
    for line in text.splitlines(keepends=True):
        found = subject(line)
        if found is not None:
            kind, name, host = found
            if not wanted(name):
                continue
            if kind in ('user', 'role') and name not in _MECHANISM:
                account = '%s@%s' % (name, host) if kind == 'user' else name
                if account not in kept:
                    kept.append(account)
        out.append(line)
    return ''.join(out), kept


class AccountsMixin:
    """Dump, check and load the accounts artifact; list and drop accounts."""

    def _selection(self) -> Selection:
        return Selection(self.conf.mysql.accounts)

    def accounts_argv(self) -> list[str]:
        """mysqldump's arguments for the accounts (after the option file)."""
        return list(DUMP_ARGS)

    def backup_accounts(self, ctx: base.TaskContext) -> base.Artifact:
        """Store the selected accounts, roles and grants as one artifact."""
        path = self.conf.mysql.mysqldump_path
        proc = None
        try:
            proc = self._spawn(path, self.accounts_argv(),
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE)
            out, err = proc.communicate(timeout=spawn.QUERY_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            if proc is not None:
                proc.kill()
                proc.communicate()
            raise exception.DumpFailed('%s --system=users failed: %s'
                                       % (path, exc))
        err = err.decode('utf-8', 'replace').strip()
        text = out.decode('utf-8', 'surrogateescape')
        if proc.returncode != 0 or _TRAILER.decode() not in text:
            raise exception.DumpFailed(
                '%s --system=users failed (exit status %d%s): %s; it needs '
                'MariaDB\'s mariadb-dump 10.5.9 or later, or [mysql] '
                'backup_accounts = false' % (
                    path, proc.returncode, '' if proc.returncode else
                    ', no "-- Dump completed" trailer',
                    err[:spawn.STDERR_SHOWN] or '(no message)'))
        if err:
            ctx.warnings.append('mysqldump --system=users: ' +
                                err[:spawn.STDERR_SHOWN])
        kept_text, kept = select(text, self._selection())
        data = kept_text.encode('utf-8', 'surrogateescape')
        writer = ctx.storage.open_writer(ctx.key(NAME, SUFFIX))
        try:
            hashing = streams.HashingWriter(writer)
            with streams.compressor(
                    hashing, level=self.conf.storage.compression_level) as z:
                z.write(data)
            ctx.progress(len(data), 0)
            location = writer.commit()
        except BaseException:
            writer.abort()
            raise
        return base.Artifact(
            name=NAME, kind=artifact_kinds.ACCOUNTS, location=location,
            size=hashing.size, sha256=hashing.sha256,
            key=ctx.key(NAME, SUFFIX),
            meta={'accounts': kept, 'uncompressed_size': len(data)})

    def check_accounts(self, ctx: base.TaskContext, location: str,
                       expected_sha256: str) -> None:
        """Raise ArtifactCorrupt unless it is a whole accounts dump."""
        seen = {'tail': b'', 'database': False}

        def feed(chunk):
            window = seen['tail'] + chunk
            seen['database'] = seen['database'] or _SECTION in window
            seen['tail'] = window[-256:]

        problem = self._scan_artifact(ctx, location, expected_sha256, feed,
                                      errors=(Exception,))
        if problem is None and seen['database']:
            problem = 'holds a database, not accounts'
        elif problem is None and _TRAILER not in seen['tail']:
            problem = 'does not end with the "-- Dump completed" trailer'
        if problem:
            raise exception.ArtifactCorrupt('Artifact %s %s; no account was '
                                            'loaded' % (location, problem))

    def load_accounts(self, ctx: base.TaskContext, location: str,
                      expected_sha256: str) -> None:
        """Load an accounts artifact through one client, as it is."""
        self._load_serially(ctx, location, NAME, expected_sha256, None,
                            what='the accounts')

    def list_accounts(self) -> list[str]:
        """The selected accounts (``user@host``) and roles on the server."""
        wanted = self._selection()
        out = []
        for row in self._query("SELECT user, host, is_role FROM mysql.user"):
            user, host, is_role = row.split('\t')
            if wanted(user) and user not in _MECHANISM:
                out.append(user if is_role == 'Y' else '%s@%s' % (user, host))
        return sorted(out)

    def drop_accounts(self, accounts: list[str]) -> None:
        """Drop accounts (``user@host``) and roles (``role``)."""
        literal = spawn.sql_literal
        for account in accounts:
            user, sep, host = account.rpartition('@')
            if sep:
                self._query('DROP USER IF EXISTS %s@%s'
                            % (literal(user), literal(host)))
            else:
                self._query('DROP ROLE IF EXISTS %s' % literal(account))

"""Artifact kinds: what one stored piece of a backup is."""

#: An archive of a file set (``.tar.zst``).
FILES = 'files'
#: A logical database dump (mysqldump).
SQL = 'sql'
#: A physical copy of a whole database server (mariadb-backup).
PHYSICAL = 'physical'
#: The output of a definition's capture command (RabbitMQ definitions,
#: OVN databases).
COMMAND = 'command'
#: A byte range of one MariaDB binary log file (point-in-time recovery).
BINLOG = 'binlog'
#: The database server's accounts, roles and grants (mariadb-dump
#: --system=users): loaded before the databases, skippable.
ACCOUNTS = 'accounts'

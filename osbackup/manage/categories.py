"""The category classes of osbackup-manage, registered by name."""

from osbackup.manage import agents
from osbackup.manage import backups
from osbackup.manage import db
from osbackup.manage import restores


def categories() -> dict:
    return {
        'agent': agents.AgentCommands,
        'backup': backups.BackupCommands,
        'db': db.DbCommands,
        'restore': restores.RestoreCommands,
    }

"""The category classes of osbackup-manage, registered by name."""

from osbackup.manage import agents
from osbackup.manage import backups
from osbackup.manage import binlogs
from osbackup.manage import catalogue
from osbackup.manage import cluster
from osbackup.manage import db
from osbackup.manage import policies
from osbackup.manage import restores
from osbackup.manage import services
from osbackup.manage import swift


def categories() -> dict:
    return {
        'agent': agents.AgentCommands,
        'backup': backups.BackupCommands,
        'binlog': binlogs.BinlogCommands,
        'catalogue': catalogue.CatalogueCommands,
        'cluster': cluster.ClusterCommands,
        'db': db.DbCommands,
        'policy': policies.PolicyCommands,
        'restore': restores.RestoreCommands,
        'service': services.ServiceCommands,
        'swift': swift.SwiftCommands,
    }

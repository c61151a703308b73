"""osbackup-agent: runs the backup drivers of one node."""

import os

from osbackup.agent import service
from osbackup.cmd import common


def _make(conf):
    # Children (mysqldump, zstd threads) inherit the niceness.
    os.nice(conf.agent.nice)
    os.umask(0o077)
    return service.AgentService(conf)


def main():
    common.daemon_main(_make)


if __name__ == "__main__":
    main()

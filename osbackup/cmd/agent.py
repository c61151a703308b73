"""osbackup-agent: runs the backup drivers of one node."""

import os

import psutil

from osbackup.agent import service
from osbackup.agent import state_lock
from osbackup.cmd import common


_IONICE = {'idle': psutil.IOPRIO_CLASS_IDLE,
           'best-effort': psutil.IOPRIO_CLASS_BE}


def _make(conf):
    # Children (mysqldump, zstd threads) inherit niceness and I/O class.
    os.nice(conf.agent.nice)
    if conf.agent.ionice_class in _IONICE:
        klass = _IONICE[conf.agent.ionice_class]
        value = conf.agent.ionice_level if \
            klass == psutil.IOPRIO_CLASS_BE else None
        psutil.Process().ionice(klass, value)
    os.umask(0o077)
    # Before anything reads or writes the journals in state_path.
    lock = state_lock.acquire(conf.state_path)
    agent = service.AgentService(conf)
    agent.state_lock = lock
    return agent


def main():
    common.daemon_main(_make)


if __name__ == "__main__":
    main()

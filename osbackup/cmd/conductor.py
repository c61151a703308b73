"""osbackup-conductor: schedules backups and keeps the catalogue."""

from osbackup.cmd import common
from osbackup.conductor import service


def main():
    common.daemon_main(service.ConductorService)


if __name__ == "__main__":
    main()

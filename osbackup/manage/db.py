"""``osbackup-manage db``: catalogue schema."""

from osbackup.db import migration
from osbackup import manage


class DbCommands:
    """Catalogue database schema."""

    def __init__(self, env):
        self.env = env

    def sync(self):
        """Create or upgrade the catalogue schema to the newest version."""
        catalogue = self.env.open_database()
        version = catalogue.sync()
        print('Catalogue schema is at version %s' % version)
        return manage.EXIT_OK

    def version(self):
        """Print the catalogue schema version."""
        catalogue = self.env.open_database()
        print('%s (newest: %s)' % (migration.current(catalogue.engine)
                                   or 'none', migration.head()))
        return manage.EXIT_OK

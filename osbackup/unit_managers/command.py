"""Command templates for hosts without systemd (``[service_command]``).

Each template is split into words like a shell would (shlex) and ``{unit}``
is replaced in every word afterwards, so a unit name can never inject
arguments or shell syntax; no shell is ever run.
"""

import re
import shlex

from osbackup import exception
from osbackup.unit_managers import base

_UNIT = re.compile(r'^[A-Za-z0-9@._:-]+$')


class CommandManager(base.UnitManager):
    name = 'command'

    @property
    def opts(self):
        return self.conf.service_command

    def _argv(self, template, unit):
        if not _UNIT.match(unit):
            raise exception.InvalidInput('Invalid unit name %r' % unit)
        return [word.replace('{unit}', unit)
                for word in shlex.split(template)]

    def _run(self, action, unit):
        argv = self._argv(getattr(self.opts, action), unit)
        return base.run(argv, self.opts.timeout, '%s of %s' % (action, unit))

    def exists(self, unit):
        # A template cannot tell "not installed" from "stopped"; every
        # configured unit is taken to exist.
        return True

    def start(self, unit):
        base.check(self._run('start', unit), 'start of %s' % unit)

    def stop(self, unit):
        base.check(self._run('stop', unit), 'stop of %s' % unit)

    def is_active(self, unit):
        return self._run('status', unit).returncode == 0

"""Swift: /etc/swift with the ring and builder files, which are critical.

Without ``*.ring.gz`` and ``*.builder`` a swift cluster cannot place or find
objects; they are part of the /etc/swift archive and recorded in the
artifact's metadata so a restore or a ring distribution can find them.
"""

import glob
import os

from osbackup.definitions import swift
from osbackup.drivers import fileset


class SwiftDriver(fileset.FileSetDriver):
    definition = swift.DEFINITION

    def rings(self) -> list[str]:
        """Ring and builder files found under /etc/swift."""
        etc = self.path('/etc/swift')
        found = []
        for pattern in ('*.ring.gz', '*.builder'):
            found.extend(glob.glob(os.path.join(etc, pattern)))
        return sorted(os.path.relpath(p, self.root) for p in found)

    def backup(self, ctx):
        artifacts = super().backup(ctx)
        rings = self.rings()
        if not rings:
            ctx.warnings.append('no ring or builder files in /etc/swift')
        artifacts[0].meta['rings'] = rings
        return artifacts

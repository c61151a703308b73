"""Version of the installed osbackup package."""

import pbr.version

version_info = pbr.version.VersionInfo('osbackup')


def version_string() -> str:
    return version_info.version_string()

"""The HTML theme shared by the documentation and the release notes.

openstackdocstheme is the theme of docs.openstack.org; both books build
with Sphinx's default theme where it is not installed.
"""


def theme_settings(extensions: list) -> dict:
    """Conf values for the theme; adds its extension to ``extensions``."""
    try:
        import openstackdocstheme  # noqa: F401
    except ImportError:
        return {'html_theme': 'alabaster'}
    extensions.append('openstackdocstheme')
    return {'html_theme': 'openstackdocs',
            'openstackdocs_repo_name': 'x/osbackup',
            'openstackdocs_use_storyboard': False,
            'openstackdocs_auto_name': False}

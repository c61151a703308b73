# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Sphinx configuration of the osbackup release notes (tox -e releasenotes).

The notes themselves are YAML files under releasenotes/notes/, collected
from the git history by reno's ``release-notes`` directive.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', '..', 'doc'))
import sphinx_theme  # noqa: E402

# -- General configuration ---------------------------------------------------

extensions = [
    'reno.sphinxext',
]

globals().update(sphinx_theme.theme_settings(extensions))

templates_path = ['_templates']
source_suffix = {'.rst': 'restructuredtext'}
master_doc = 'index'

project = 'osbackup Release Notes'
copyright = '2026, osbackup developers'
author = 'osbackup developers'

# Release notes are not versioned by the package: reno names the versions.
version = ''
release = ''

exclude_patterns = []
pygments_style = 'sphinx'

# -- Options for HTML output -------------------------------------------------

html_static_path = ['_static']
htmlhelp_basename = 'osbackupReleaseNotesdoc'

# -- Options for Internationalization output ---------------------------------

locale_dirs = ['locale/']

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

"""Sphinx configuration of the osbackup documentation (tox -e docs).

The configuration reference is generated from osbackup's registered
options, so osbackup must be installed in the environment that builds it.
"""

# -- General configuration ---------------------------------------------------

extensions = [
    'oslo_config.sphinxext',
]

# openstackdocstheme is the theme of docs.openstack.org; the docs build
# with Sphinx's default theme where it is not installed.
try:
    import openstackdocstheme  # noqa: F401
except ImportError:
    html_theme = 'alabaster'
else:
    extensions.append('openstackdocstheme')
    html_theme = 'openstackdocs'
    openstackdocs_repo_name = 'x/osbackup'
    openstackdocs_use_storyboard = False
    openstackdocs_auto_name = False

source_suffix = {'.rst': 'restructuredtext'}
master_doc = 'index'

project = 'osbackup'
copyright = '2026, osbackup developers'
author = 'osbackup developers'

exclude_patterns = []
pygments_style = 'sphinx'

# -- Options for HTML output -------------------------------------------------

html_static_path = ['_static']
htmlhelp_basename = 'osbackupdoc'

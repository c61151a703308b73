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

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..'))
import sphinx_theme  # noqa: E402

# -- General configuration ---------------------------------------------------

extensions = [
    'oslo_config.sphinxext',
]

globals().update(sphinx_theme.theme_settings(extensions))

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

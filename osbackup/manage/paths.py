"""Where a restore's files really go: under each agent's ``root_path``.

Plans and agents' reports name service paths as the backup saw them
(``/etc/nova``); an agent with ``[agent] root_path = /srv/node1`` stages
and replaces ``/srv/node1/etc/nova``. The table shows the latter.
"""

import os

#: Steps whose target is a path on the node.
_FILE_ACTIONS = ('stage', 'replace')


def agent_roots(agents: list) -> dict:
    """{host: root_path} from the agents' heartbeats ('/' when unknown)."""
    return {a['host']: (a.get('info') or {}).get('root_path') or '/'
            for a in agents}


def real_targets(restore: dict, roots: dict) -> dict:
    """A copy of ``restore`` whose file steps name the node's real paths."""
    steps = []
    for step in restore['steps']:
        root = roots.get(step.get('host')) or '/'
        target = step.get('target') or ''
        if step.get('action') in _FILE_ACTIONS and \
                target.startswith('/') and root != '/':
            step = dict(step, target=os.path.join(root, target.lstrip('/')))
        steps.append(step)
    return dict(restore, steps=steps)

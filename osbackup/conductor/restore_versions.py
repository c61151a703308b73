"""Version differences between a backup and the nodes it is restored on.

Each artifact's meta records the osbackup version of the agent that made
it and, where dpkg knew it, its service's package and version; each
agent's heartbeat reports its osbackup version and its services' package
versions. A restore plan lists every difference it can see, so
``restore create --dry-run`` names them before anything changes. (A
database's schema version is compared by the agent, against the live
database, in the restore's prepare phase: drivers/mysql/schema.py.)
"""


def _artifacts(entry: dict) -> list[dict]:
    """Every artifact a host's part of a plan restores."""
    out = [f['artifact'] for f in entry.get('files', [])]
    out += [d['artifact'] for d in entry.get('databases', [])]
    out += [c['artifact'] for c in entry.get('commands', [])]
    out += [p['artifact'] for p in entry.get('physical', [])]
    if entry.get('accounts'):
        out.append(entry['accounts']['artifact'])
    return out


def differences(plan: dict, agents: dict) -> list[dict]:
    """[{host, what, backup, running, artifacts}] of ``plan``'s hosts.

    ``what`` is ``osbackup`` or a package name; ``backup`` the version
    the artifacts were made with, ``running`` the host's. Only versions
    known on both sides are compared.
    """
    out = {}
    for host, entry in sorted(plan['hosts'].items()):
        agent = agents.get(host) or {}
        running = {'osbackup': agent.get('version')}
        running.update((agent.get('info') or {}).get('packages') or {})
        for art in _artifacts(entry):
            meta = art.get('meta') or {}
            made = {'osbackup': meta.get('osbackup_version')}
            if meta.get('package'):
                made[meta['package']['name']] = meta['package']['version']
            for what, version in made.items():
                now = running.get(what)
                if version and now and version != now:
                    diff = out.setdefault((host, what, version), {
                        'host': host, 'what': what, 'backup': version,
                        'running': now, 'artifacts': []})
                    diff['artifacts'].append(art['name'])
    return list(out.values())


def describe(diff: dict) -> str:
    """One line for the table output."""
    return '%s: %s %s in the backup (%s), %s running' % (
        diff['host'], diff['what'], diff['backup'],
        ', '.join(diff['artifacts']), diff['running'])

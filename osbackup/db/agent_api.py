"""Catalogue queries for agents: their state, goodbyes, skew, rejections.

A mixin of ``Catalogue`` (see policy_api.py). An agent's state is derived
when it is read, from what its heartbeats and goodbye recorded:

* ``stopped``: it said goodbye (a clean stop) after its last heartbeat;
* ``skewed``: its latest heartbeats were refused only for their time (the
  seal was valid): it runs, but its clock is off by ``clock_offset``;
* ``up`` / ``down``: a heartbeat within ``down_after`` seconds, or not.

Rejected senders (no key, another key) are not agents: their claims are
unauthenticated, so they live in a table of their own, bounded in rows.
"""

import datetime

import sqlalchemy as sa

from osbackup.db import agent_rows
from osbackup.db import models
from osbackup.db import rows
from osbackup import exception
from osbackup import states

#: Rejected senders kept at most (the oldest are dropped): anyone can
#: claim any host name, so the table must not grow with the claims.
MAX_REJECTIONS = 100
AGENT_FIELDS = agent_rows.AGENT_FIELDS
agent_state = agent_rows.state


class AgentQueries:
    """Agents' rows beyond the heartbeat upsert (db/api.py)."""

    def list_agents(self, down_after: int) -> list[dict]:
        now = rows.now()
        with self.session() as s:
            out = []
            for row in s.scalars(sa.select(models.Agent)
                                 .order_by(models.Agent.host)):
                agent = rows.row(row, *AGENT_FIELDS)
                agent['state'] = agent_state(row, now, down_after)
                out.append(agent)
            return out

    def skewed_agents(self, hosts, down_after: int) -> dict:
        """{host: clock offset} of those of ``hosts`` that are skewed."""
        if not hosts:
            return {}
        now = rows.now()
        table = models.Agent.__table__
        with self.session() as s:
            found = s.execute(sa.select(table).where(
                table.c.skewed_at.is_not(None),
                table.c.host.in_(sorted(hosts)))).all()
        return {row.host: row.clock_offset for row in found
                if agent_state(row, now, down_after) == states.SKEWED}

    def delete_agent(self, host: str, down_after: int,
                     force: bool = False) -> dict:
        """Forget a retired host; its backups stay in the catalogue."""
        with self.session() as s:
            row = s.scalars(sa.select(models.Agent).where(
                models.Agent.host == host).with_for_update()).first()
            if row is None:
                raise exception.NotFound('Agent %s not found (see '
                                         '"osbackup-manage agent list")'
                                         % host)
            state = agent_state(row, rows.now(), down_after)
            if state in (states.UP, states.SKEWED) and not force:
                raise exception.Conflict(
                    'Agent %s is %s: stop it first, or use --force (it '
                    'reappears with its next heartbeat)' % (host, state))
            agent = dict(rows.row(row, *AGENT_FIELDS), state=state)
            s.delete(row)
            s.execute(sa.delete(models.AgentRejection).where(
                models.AgentRejection.host == host))
            return agent

    # -- written by the report recorder, in its batch ---------------------

    @staticmethod
    def _record_goodbyes(s, hosts, now) -> None:
        if hosts:
            agents = models.Agent.__table__
            s.execute(sa.update(agents).where(agents.c.host.in_(
                sorted(hosts))).values(stopped_at=now))

    def _record_skews(self, s, skews, now) -> None:
        """{host: (version, info, offset)} of heartbeats refused for time.

        The seal was valid, so the claim is the agent's own; only its time
        is off. The offset is kept, the heartbeat is not (last_heartbeat
        stays, except for a host seen for the first time).
        """
        if not skews:
            return
        agents = models.Agent.__table__
        known = set(s.scalars(sa.select(agents.c.host).where(
            agents.c.host.in_(sorted(skews)))))
        new = [dict(host=host, version=version, info=info, created_at=now,
                    last_heartbeat=now, clock_offset=offset, skewed_at=now)
               for host, (version, info, offset) in skews.items()
               if host not in known]
        if new:
            s.execute(sa.insert(agents), new)
        self._update_rows(s, agents.c.host, {
            host: dict(clock_offset=offset, skewed_at=now)
            for host, (_v, _i, offset) in skews.items() if host in known})

    # -- rejected senders --------------------------------------------------

    def record_rejections(self, entries: dict) -> None:
        """Add {host: (reason, count, first, last)} to the rejections."""
        if not entries:
            return
        table = models.AgentRejection.__table__
        with self.session() as s:
            found = {r.host: r for r in s.execute(
                sa.select(table).where(table.c.host.in_(sorted(entries))))}
            for host, (reason, count, first, last) in entries.items():
                old = found.get(host)
                if old is None:
                    s.execute(sa.insert(table).values(
                        host=host, reason=reason, count=count,
                        first_at=first, last_at=last))
                else:
                    s.execute(sa.update(table).where(table.c.host == host)
                              .values(reason=reason, count=old.count + count,
                                      last_at=max(old.last_at, last)))
            extra = s.scalars(sa.select(table.c.host)
                              .order_by(table.c.last_at.desc())
                              .offset(MAX_REJECTIONS)).all()
            if extra:
                s.execute(sa.delete(table).where(table.c.host.in_(extra)))

    def list_rejections(self, within: int) -> list[dict]:
        """Senders refused in the last ``within`` seconds, newest first."""
        since = rows.now() - datetime.timedelta(seconds=within)
        with self.session() as s:
            return [rows.row(r, *agent_rows.REJECTION_FIELDS)
                    for r in s.scalars(
                        sa.select(models.AgentRejection)
                        .where(models.AgentRejection.last_at >= since)
                        .order_by(models.AgentRejection.last_at.desc()))]

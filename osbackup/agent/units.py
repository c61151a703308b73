"""Which of a service's configured units exist on this node (cached)."""

import time


class UnitCache:
    """Remember ``exists()`` answers for ``ttl`` seconds.

    Heartbeats report a node's units every few seconds; asking systemd
    about every unit each time would cost more than the heartbeat itself.
    """

    def __init__(self, manager, ttl: float = 300):
        self.manager = manager
        self.ttl = ttl
        self._seen = {}

    def _exists(self, unit):
        now = time.monotonic()
        known = self._seen.get(unit)
        if known is None or now - known[1] > self.ttl:
            try:
                known = (self.manager.exists(unit), now)
            except Exception:
                known = (False, now)
            self._seen[unit] = known
        return known[0]

    def of(self, service: str, driver) -> list[str]:
        return [u for u in driver.units() if self._exists(u)]

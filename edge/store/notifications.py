"""The notification outbox, in the alert store's database: rows are queued with the transition that
caused them (``AlertStore``), and drained here oldest first.

Delivery is at least once with a stable key: ``begin`` counts the attempt before anything is sent,
``sent`` marks the row after the receiver accepted it. A crash between the two resends the row with
the same key (``ew-<event>-<target>``, in the message and, for generic webhooks, as the
``Idempotency-Key`` header), so a receiver can drop the replay; an interrupted SMTP transaction
delivers nothing, so e-mail sees no double.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.store.alerts import AlertStore


@dataclass(frozen=True)
class Queued:
    id: int
    key: str
    target: str
    title: str
    body: str
    attempts: int
    created_at: float
    priority: int = 0  # 2 fault, 1 warning, 0 cleared and what people did (limited to half the rate)


class NotificationQueue:
    def __init__(self, store: AlertStore) -> None:
        self.store = store

    def due(self, now: float, limit: int = 20) -> list[Queued]:
        """Due rows, the worst news first (a fault never waits behind snooze chatter), then oldest first."""
        rows = self.store.read("SELECT id, key, target, title, body, attempts, created_at, priority FROM notifications"
                               " WHERE status = 'pending' AND next_try_at <= ? ORDER BY priority DESC, id LIMIT ?",
                               (now, limit))
        return [Queued(*row) for row in rows]

    def next_try_at(self) -> float | None:
        """When the earliest pending notification may go (None: nothing pending)."""
        value = self.store.read("SELECT MIN(next_try_at) FROM notifications WHERE status = 'pending'")[0][0]
        return None if value is None else float(value)

    def oldest_pending_at(self) -> float | None:
        """When the oldest notification still waiting was queued (None: nothing waits)."""
        value = self.store.read("SELECT MIN(created_at) FROM notifications WHERE status = 'pending'")[0][0]
        return None if value is None else float(value)

    def begin(self, item: Queued) -> None:
        with self.store.write() as db:
            db.execute("UPDATE notifications SET attempts = attempts + 1 WHERE id = ?", (item.id,))

    def sent(self, item: Queued, at: float) -> None:
        with self.store.write() as db:
            db.execute("UPDATE notifications SET status = 'sent', sent_at = ?, error = NULL WHERE id = ?",
                       (at, item.id))

    def retry(self, item: Queued, error: str, at: float) -> None:
        with self.store.write() as db:
            db.execute("UPDATE notifications SET error = ?, next_try_at = ? WHERE id = ?", (error, at, item.id))

    def drop(self, item: Queued, error: str) -> None:
        """Give up on a row whose target is no longer configured (it can never be sent)."""
        with self.store.write() as db:
            db.execute("UPDATE notifications SET status = 'dropped', error = ? WHERE id = ?", (error, item.id))

    def sent_since(self, since: float, below_priority: int | None = None) -> int:
        """Sent since ``since`` (only those of a priority below ``below_priority`` when given)."""
        ceiling = 1 << 30 if below_priority is None else below_priority
        return int(self.store.read("SELECT COUNT(*) FROM notifications WHERE status = 'sent' AND sent_at >= ?"
                                   " AND priority < ?", (since, ceiling))[0][0])

    def counts(self) -> dict[str, int]:
        return {status: int(n) for status, n in
                self.store.read("SELECT status, COUNT(*) FROM notifications GROUP BY status")}

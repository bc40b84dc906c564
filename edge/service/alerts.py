"""Build the alert side of the service from the config: store, lifecycle, notifier, corrections."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from edge.alerts.lifecycle import AlertBook
from edge.alerts.notifier import Notifier, target_id
from edge.settings import Config
from edge.store.alerts import AlertStore, Retention
from edge.store.history import History
from edge.store.notifications import NotificationQueue
from edge.vision.corrections import Corrections, frame_embedder
from edge.vision.encoder import ImageEncoder

log = logging.getLogger(__name__)


@dataclass
class AlertParts:
    store: AlertStore
    book: AlertBook
    notifier: Notifier | None = None

    def start_notifier(self, config: Config, on_pending: Callable[[int], None] | None = None) -> None:
        """Deliver notifications when ``alerts.notify`` lists targets; ``on_pending`` hears how many
        wait after each delivery round (a metrics gauge)."""
        urls = [url.get_secret_value() for url in config.alerts.notify]
        if not urls:
            log.info("alert notifications off (no alerts.notify)")
            return
        notifier = Notifier(NotificationQueue(self.store), urls, config.alerts, on_pending=on_pending).start()
        self.book.listeners.append(lambda asset, status: notifier.wake())
        self.notifier = notifier

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.close()
        self.store.close()


def open_book(config: Config) -> AlertBook:
    """The alert lifecycle on ``<state_dir>/alerts.sqlite3`` (also what the CLI opens)."""
    urls = [url.get_secret_value() for url in config.alerts.notify]
    retention = Retention(events=config.alerts.keep_events, notifications=config.alerts.keep_notifications)
    return AlertBook(AlertStore(config.state.alerts, retention), config.alerts,
                     {asset.id: asset.name for asset in config.assets}, [target_id(url) for url in urls],
                     site=config.site)


def build_alerts(config: Config) -> AlertParts:
    """The lifecycle; ``start_notifier`` once the outputs (and their metrics) exist."""
    book = open_book(config)
    return AlertParts(book.store, book)


def build_corrections(config: Config, history: History, store: AlertStore, encoder: ImageEncoder | None,
                      relearn: Mapping[str, Callable[[], None]] | None = None) -> Corrections:
    """Corrections teach ``<state_dir>/learned``; ``relearn`` reloads a running asset's vision."""

    def reload(asset: str) -> None:
        again = (relearn or {}).get(asset)
        if again is not None:
            again()

    return Corrections(history, store, config.state.learned,
                       None if encoder is None else frame_embedder(encoder), config.escalation.learning, reload)

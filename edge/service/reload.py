"""Reload on SIGHUP (``systemctl reload edgewatch``): check the new config first, then rebuild.

The signal handler only writes a byte to a pipe (async-signal-safe); a thread reads it, loads the
config and checks what a rebuild reads (bundle hashes, asset profiles) while the running service
keeps checking. A config that fails is refused and logged, and the running one stays. One that
passes stops the running service as SIGTERM would (running checks finish, learned state is saved,
history and the escalation outbox stay on disk) and ``serve`` builds the next one from it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from edge.errors import ConfigError, EdgewatchError
from edge.service.loop import Service
from edge.settings import Config, load_config

log = logging.getLogger(__name__)

_WAKE = b"h"  # a SIGHUP
_QUIT = b"q"  # close()


def check_config(path: Path, unit: Path | None = None) -> Config:
    """Load the config and everything a rebuild would refuse: notify URLs, bundle hashes, each asset's
    profile and, under systemd (``unit``: default the installed one), a device or group the unit does
    not give."""
    from edge.bundle.load import load_bundle
    from edge.service.hardware import denied, install_command, unit_access
    from edge.service.install import INSTALLED_UNIT
    from edge.vision.profile import load_profile

    config = load_config(path)
    if config.alerts.notify:
        from edge.alerts.notifier import check_urls

        check_urls([url.get_secret_value() for url in config.alerts.notify])
    unit = unit or (INSTALLED_UNIT if "INVOCATION_ID" in os.environ else None)
    if unit is not None and unit.is_file():
        missing = denied(config, *unit_access(unit))
        if missing:
            raise ConfigError(f"{path}: {'; '.join(missing)}, which {unit.name} does not allow: run "
                              f"'sudo {install_command(path)}', then 'sudo systemctl restart {unit.name}'")
    bundle = (load_bundle(config.model.bundle, verify=True, trusted_keys=config.model.trusted_keys)
              if config.model is not None else None)
    for asset in config.assets:
        if asset.profile is not None:
            load_profile(asset.profile, bundle)
    return config


class Reloader:
    """Turns SIGHUP into 'stop the running service, a checked config is waiting' (see the module docstring)."""

    def __init__(self, path: Path, check: Callable[[Path], Config] = check_config) -> None:
        self._path = path
        self._check = check
        self._lock = threading.Lock()
        self._service: Service | None = None
        self._next: Config | None = None
        self._read_fd, self._write_fd = os.pipe()
        self._thread = threading.Thread(target=self._watch, name="reload", daemon=True)
        self._thread.start()

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The SIGHUP handler: os.write is safe in a signal handler where locks are not."""
        os.write(self._write_fd, _WAKE)

    def attach(self, service: Service) -> None:
        """The service a checked config replaces; a reload checked while it was being built applies at once."""
        with self._lock:
            self._service = service
            if self._next is not None:
                service.request_stop(reloading=True)

    def take(self) -> Config | None:
        """The checked config waiting to be used, if a reload stopped the service."""
        with self._lock:
            config, self._next = self._next, None
            return config

    def close(self) -> None:
        os.write(self._write_fd, _QUIT)
        self._thread.join(timeout=5.0)
        os.close(self._write_fd)
        os.close(self._read_fd)

    def _watch(self) -> None:
        while _QUIT not in os.read(self._read_fd, 64):
            self.reload()

    def reload(self) -> bool:
        """Check the config file; True when it passed and the running service was asked to stop."""
        log.info("reload requested: checking %s", self._path)
        try:
            config = self._check(self._path)
        except EdgewatchError as exc:
            log.error("reload refused, the running config stays: %s", exc)
            return False
        except Exception:  # a bug must not end the reload thread: later SIGHUPs still work
            log.exception("reload refused, the running config stays")
            return False
        with self._lock:
            self._next = config
            if self._service is not None:
                self._service.request_stop(reloading=True)
        return True


def serve(config: Config, build: Callable[[Config], Service], reloader: Reloader,
          stopping: Callable[[], bool], on_start_failed: Callable[[], None] | None = None) -> None:
    """Run services until one stops for a reason other than a reload (``stopping()``: SIGTERM came).

    A checked config that still fails to start (a port taken, a camera gone) falls back to the
    previous one, after ``on_start_failed()`` (a fleet rollout points its files back); if the first
    config fails, the error is raised (systemd restarts the unit).
    """
    previous: Config | None = None
    while True:
        try:
            service = build(config)
        except EdgewatchError as exc:
            if previous is None:
                raise
            log.error("the reloaded config could not start (%s); going back to the previous one", exc)
            if on_start_failed is not None:
                on_start_failed()
            config, previous = previous, None
            continue
        reloader.attach(service)
        if stopping():  # SIGTERM came while it was being built
            service.request_stop()
        service.run()
        following = reloader.take()
        if following is None or stopping():
            return
        log.info("config reloaded: starting the service again")
        previous, config = config, following

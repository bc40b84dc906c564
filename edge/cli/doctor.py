"""``edgewatch doctor``: try every configured part once and say, per part, whether it works.

Each check returns a ``Result``; a check never raises (a broken part is a FAIL row, not a
traceback) and never blocks for long (camera grabs and sensor reads run under a timeout).
Cloud reachability lists the endpoint's models, which costs no tokens.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from edge.errors import EdgewatchError
from edge.service.hardware import CAMERAS, DROPIN_NAME, SENSORS, Access, access, fix_lines, install_command
from edge.settings import Config, load_config

Status = Literal["PASS", "WARN", "FAIL", "SKIP"]
T = TypeVar("T")

MIN_FREE_BYTES = 512 * 1024 * 1024
EARLIEST_PLAUSIBLE_S = 1_767_225_600.0  # 2026-01-01: a board without RTC boots in 1970 until NTP syncs
CAMERA_TIMEOUT_S = 20.0
CLOUD_TIMEOUT_S = 10.0
DENIED = re.compile(r"operation not permitted|permission denied|errno (1|13)\b", re.IGNORECASE)  # EPERM, EACCES


@dataclass(frozen=True)
class Result:
    check: str
    status: Status
    detail: str


def run_checks(config_path: Path) -> list[Result]:
    """Every check for the config at ``config_path``, in the order a person would fix them."""
    try:
        config = load_config(config_path)
    except EdgewatchError as exc:
        return [Result("config", "FAIL", str(exc))]
    results = [Result("config", "PASS", f"{config_path}: {len(config.assets)} asset(s)")]
    encoder = None
    for result, loaded in _model_checks(config):
        results.append(result)
        encoder = loaded if loaded is not None else encoder
    results += _profile_checks(config, encoder)
    results += [denial_fix(_camera(asset.id, camera), CAMERAS, camera, config_path)
                for asset in config.assets for camera in asset.cameras]
    results += [denial_fix(_sensor(asset.id, sensor), SENSORS, sensor, config_path)
                for asset in config.assets for sensor in asset.sensors]
    results += [_state_dir(config), _clock(), _cloud(config), *_outputs(config), *_notifications(config)]
    return results


def format_table(results: list[Result]) -> str:
    width = max(len(r.check) for r in results)
    lines = [f"{'CHECK':<{width}}  RESULT  DETAIL"]
    lines += [f"{r.check:<{width}}  {r.status:<6}  {r.detail}" for r in results]
    failed = sum(r.status == "FAIL" for r in results)
    warned = sum(r.status == "WARN" for r in results)
    lines.append(f"{failed} failed, {warned} warning(s), {len(results) - failed - warned} ok or skipped")
    return "\n".join(lines)


def _guard(check: str, action: Callable[[], Result]) -> Result:
    try:
        return action()
    except EdgewatchError as exc:
        return Result(check, "FAIL", str(exc))
    except Exception as exc:  # doctor reports every failure as a row, whatever raised it
        return Result(check, "FAIL", f"{type(exc).__name__}: {exc}")


def denial_fix(result: Result, table: dict[str, Access], part: Any, config_path: Path) -> Result:
    """A read the device sandbox (or a missing group) refused names the drop-in lines that open it."""
    found = access(table, part)
    if result.status != "FAIL" or not found.devices or not DENIED.search(result.detail):
        return result
    return Result(result.check, "FAIL", f"{result.detail}; opened by the drop-in line(s) "
                  f"{', '.join(fix_lines(found))} ({DROPIN_NAME}: sudo {install_command(config_path)})")


def _with_timeout(action: Callable[[], T], timeout_s: float, what: str) -> T:
    """Run ``action`` in a daemon thread; a hung driver cannot hang the doctor."""
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="doctor")
    try:
        return pool.submit(action).result(timeout=timeout_s)
    except concurrent.futures.TimeoutError:
        raise EdgewatchError(f"{what} did not answer within {timeout_s:g} s") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _model_checks(config: Config) -> Iterator[tuple[Result, Any]]:
    if config.model is None:
        yield Result("model", "SKIP", "no model configured (sensor-only)"), None
        return
    from edge.bundle.load import load_bundle
    from edge.vision.encoder import ImageEncoder, RuntimeOptions, choose_providers

    try:
        bundle = load_bundle(config.model.bundle, verify=True, trusted_keys=config.model.trusted_keys)
    except EdgewatchError as exc:
        yield Result("bundle hashes", "FAIL", str(exc)), None
        return
    signed = ", signed by a trusted key" if config.model.trusted_keys else ""
    yield Result("bundle hashes", "PASS",
                 f"{config.model.bundle}: {len(bundle.manifest.files)} file(s) verified{signed}"), None

    import onnxruntime as ort

    available = ort.get_available_providers()
    chosen = choose_providers(config.model.provider, available)
    wanted = config.model.provider
    status: Status = "PASS" if wanted in ("auto", "cpu") or not chosen[0].startswith("CPU") else "WARN"
    detail = f"available: {', '.join(available)}; '{wanted}' uses {chosen[0]} (onnxruntime {ort.__version__})"
    yield Result("onnxruntime providers", status, detail), None
    start = time.perf_counter()
    try:
        encoder = ImageEncoder.load(bundle, RuntimeOptions.from_settings(config.model, config.state_dir))
    except EdgewatchError as exc:
        yield Result("model load", "FAIL", str(exc)), None
        return
    elapsed_ms = (time.perf_counter() - start) * 1e3
    detail = f"runs on {encoder.provider}; loaded and warmed up in {elapsed_ms:.0f} ms"
    yield Result("model load", "PASS", detail), encoder


def _profile_checks(config: Config, encoder: Any) -> list[Result]:
    from edge.vision.profile import load_profile

    bundle = None if encoder is None else encoder.bundle
    results = []
    for asset in config.assets:
        if asset.profile is None:
            continue
        check, path = f"profile {asset.id}", asset.profile

        def load(check: str = check, path: Path = path) -> Result:
            load_profile(path, bundle)
            return Result(check, "PASS", f"{path}" + (" matches the bundle" if bundle is not None else ""))

        results.append(_guard(check, load))
    return results


def _camera(asset_id: str, camera: Any) -> Result:
    from edge.sources.health import FrameHealth, sharpness, thumbnail
    from edge.sources.plugins import make_camera

    check = f"camera {asset_id}/{camera.name}"

    def grab() -> Result:
        with make_camera(camera) as source:
            frame = source.grab()
        height, width = frame.image.shape[:2]
        grey = thumbnail(frame.image)
        detail = (f"{camera.type}: {width}x{height} frame, brightness {grey.mean():.0f}, "
                  f"sharpness {sharpness(grey):.1f} (blur_below {camera.health.blur_below:g})")
        problem = FrameHealth(camera.name, camera.health).check(frame)
        if problem is not None:
            return Result(check, "WARN", f"{detail}; {'; '.join(problem.reasons)}")
        return Result(check, "PASS", detail)

    return _guard(check, lambda: _with_timeout(grab, CAMERA_TIMEOUT_S, f"camera {camera.name}"))


def _sensor(asset_id: str, sensor: Any) -> Result:
    from edge.sensors import health
    from edge.sensors.plugins import build_reader

    check = f"sensor {asset_id}/{sensor.name}"

    def read() -> Result:
        reader = build_reader(sensor)
        try:
            reading = _with_timeout(reader.read, sensor.timeout_s, f"sensor {sensor.name}")
        finally:
            reader.close()
        trouble = health.problem(sensor, reading)
        if reading.samples is not None:
            shown = f"{reading.samples.size} samples at {reading.rate_hz:g} Hz"
        else:
            shown = f"{reading.value:g} {sensor.unit}".rstrip()
        if trouble is not None:
            return Result(check, "FAIL", f"{sensor.type}: read {shown}, rejected: {trouble}")
        return Result(check, "PASS", f"{sensor.type}: {shown}")

    return _guard(check, read)


def _state_dir(config: Config) -> Result:
    check = "state folder and disk"

    def inspect() -> Result:
        folder = config.state_dir
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        free = shutil.disk_usage(existing).free
        want = (config.history.max_db_mb + config.history.max_frames_mb) * 1024 * 1024
        writable = os.access(existing, os.W_OK)
        detail = f"{folder}: {free / 2**30:.1f} GiB free (history may use up to {want / 2**30:.2f} GiB)"
        if not writable:
            return Result(check, "FAIL", f"{detail}; {existing} is not writable by this user")
        if free < MIN_FREE_BYTES:
            return Result(check, "FAIL", f"{detail}; less than {MIN_FREE_BYTES / 2**20:.0f} MiB free")
        return Result(check, "WARN" if free < want else "PASS", detail)

    return _guard(check, inspect)


def _clock() -> Result:
    now = time.time()
    shown = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    if now < EARLIEST_PLAUSIBLE_S:
        return Result("clock", "FAIL", f"{shown} is before this release; the board has no RTC and NTP has not "
                                       "synced yet: verdict times would be wrong")
    synced = Path("/run/systemd/timesync/synchronized").exists()
    return Result("clock", "PASS", f"{shown}" + ("; NTP synchronised" if synced else "; NTP state unknown"))


def _cloud(config: Config) -> Result:
    check = "cloud reachability"
    escalation = config.escalation
    if not escalation.enabled:
        return Result(check, "SKIP", "escalation is off")

    def ask() -> Result:
        from edge.escalation.client import resolve_api_key

        key = resolve_api_key(escalation)
        url = escalation.base_url.rstrip("/") + "/models"  # listing models is free: no tokens spent
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
        try:
            with urllib.request.urlopen(request, timeout=CLOUD_TIMEOUT_S) as response:
                models = [item.get("id") for item in json.loads(response.read()).get("data", [])]
        except urllib.error.HTTPError as exc:
            why = "the API key was rejected" if exc.code in (401, 403) else f"HTTP {exc.code} {exc.reason}"
            return Result(check, "FAIL", f"{url}: {why}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return Result(check, "FAIL", f"{url}: {getattr(exc, 'reason', exc)}")
        listed = escalation.model in models
        return Result(check, "PASS" if listed or not models else "WARN",
                      f"{url}: answered; model '{escalation.model}' " + ("listed" if listed else "not listed"))

    return _guard(check, ask)


def _outputs(config: Config) -> list[Result]:
    results = []
    mqtt = config.outputs.mqtt
    if mqtt is not None:
        check = "mqtt broker"

        def connect() -> Result:
            with socket.create_connection((mqtt.host, mqtt.effective_port), timeout=5):
                return Result(check, "PASS", f"{mqtt.host}:{mqtt.effective_port} accepts connections")

        results.append(_guard(check, connect))
    return results


def _notifications(config: Config) -> list[Result]:
    """The notification targets apprise must understand, and a queue that is not draining."""
    urls = [url.get_secret_value() for url in config.alerts.notify]
    if not urls:
        return []
    check = "notifications"

    def targets() -> Result:
        from edge.alerts.notifier import check_urls, scheme

        check_urls(urls)
        waiting = _oldest_pending_s(config)
        if waiting is not None and waiting > 3600:
            return Result(check, "WARN", f"a notification has waited {waiting / 3600:.1f} h: is its receiver "
                                         "down? (see the journal)")
        return Result(check, "PASS", f"{len(urls)} target(s): " + ", ".join(scheme(url) for url in urls))

    return [_guard(check, targets)]


def _oldest_pending_s(config: Config) -> float | None:
    from edge.store.alerts import AlertStore
    from edge.store.notifications import NotificationQueue

    path = config.state.alerts
    if not path.exists():
        return None
    with AlertStore(path) as store:
        oldest = NotificationQueue(store).oldest_pending_at()
    return None if oldest is None else time.time() - oldest


def doctor(config_path: Path) -> tuple[str, bool]:
    """The table to print and whether every check passed (warnings allowed)."""
    results = run_checks(config_path)
    return format_table(results), not any(r.status == "FAIL" for r in results)

"""The board tests' image: the replay demo as a service config, built once per run (cache reused), plus
what the emulated hardware needs: the extra its camera uses and a real CWRU record for the sound card."""

from __future__ import annotations

import socket
import wave
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.signal import resample_poly

from board.build import BuildRequest, Built, build
from board.inject import Payload
from edge import cwru

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN = "board-test-token-0123456789abcdef"
FAULT_RECORD = "OR007_centered_at_6_0"  # outer race, 0.007 in, 0 HP, drive end, 12 kHz (edgewatch's own subset)
FEED_RATE_HZ = 48_000
FULL_SCALE_V, SENSITIVITY_MV_PER_G = 2.0, 100.0  # an IEPE channel into a 2 V-peak line input
I2C_STUB = "drivers/i2c/i2c-stub.c"  # Debian's arm64 kernel lacks it: built for the image's kernel (tests only)
TMP117_ADDRESS, TMP117_C = 0x48, 41.5  # the emulated chip and the temperature in its register map


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def guest_config(path: Path, port: int, *assets: dict[str, Any]) -> Path:
    """examples/demo.yaml as a board would run it: state under /var/lib, the API on the guest's network."""
    config = yaml.safe_load((REPO_ROOT / "examples/demo.yaml").read_text(encoding="utf-8"))
    config["state_dir"] = "/var/lib/edgewatch"
    config["outputs"] = {"http": {"bind": "0.0.0.0", "port": port, "token": TOKEN}}
    config["assets"] += assets
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def feed_wav(folder: Path) -> Path:
    """The CWRU outer-race record at 48 kHz as 16-bit PCM, as an IEPE accelerometer's voltage reaches a line input."""
    record = cwru.records()[FAULT_RECORD]
    g = resample_poly(record.samples().astype(np.float64), FEED_RATE_HZ, int(record.sample_rate_hz))  # (N,) in g
    counts = np.clip(np.round(g * SENSITIVITY_MV_PER_G / 1000 / FULL_SCALE_V * 32767), -32768, 32767)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "feed.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(FEED_RATE_HZ)
        out.writeframes(counts.astype("<i2").tobytes())
    return path


def rig_asset() -> dict[str, Any]:
    """Kernel-emulated hardware: vivid's camera, snd-aloop's capture side and a TMP117 on i2c-stub's bus
    (the guest's only I2C adapter, so i2c-0)."""
    return {
        "id": "rig-1", "check_interval_s": 10,
        "cameras": [{"name": "vivid", "type": "v4l2", "device": "/dev/video0", "width": 640, "height": 480}],
        "sensors": [
            {"name": "drive_end", "type": "soundcard", "device": "hw:Loopback,1,0", "quantity": "vibration",
             "unit": "g", "rate_hz": FEED_RATE_HZ, "burst_samples": 65536, "full_scale_v": FULL_SCALE_V,
             "sensitivity_mv_per_g": SENSITIVITY_MV_PER_G, "interval_s": 10, "timeout_s": 20,
             "vibration": {"rpm": 1797, "bearing": "6205"}},
            {"name": "bearing", "type": "i2c", "chip": "tmp117", "bus": 0, "address": TMP117_ADDRESS,
             "quantity": "temperature", "unit": "degC", "interval_s": 10},
        ],
        "fusion": {"persistence": {"raise_after": 1, "clear_after": 1}},
    }


def build_test_image(work: Path) -> tuple[Built, int]:
    port = free_port()
    config = guest_config(work / "config.yaml", port)
    rig = feed_wav(work / "rig").parent
    guest_config(rig / "config.yaml", port, rig_asset())  # copied over the config once the devices exist
    request = BuildRequest(out=work / "edgewatch.img", payload=Payload(config, (REPO_ROOT / "examples/demo", rig)),
                           extras="cloud,mqtt,video,i2c", serial_autologin=True, keep_root=work / "root",
                           test_modules=(I2C_STUB,))
    return build(request), port

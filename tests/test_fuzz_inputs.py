"""Fuzzing the three inputs a stranger controls: config YAML, the sensors JSON and frame bytes.

Whatever the bytes, the answer is a result or one EdgewatchError sentence — never a traceback —
and the memory spent stays bounded (Python and numpy allocations, measured with tracemalloc;
Pillow's own buffers are bounded by the decoder's pixel cap, fuzzed here through the header).
Example counts and deadlines are sized for a CI run of a few seconds per test.
"""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from edge.errors import ConfigError, InputError
from edge.frames.decode import MAX_DECODED_PIXELS, decode_frame
from edge.sensors import snapshot_file
from edge.settings import Config, load_config
from tests.conftest import REPO_ROOT

MAX_PEAK_BYTES = 200 * 2**20
FUZZ = settings(max_examples=120, deadline=timedelta(seconds=5), derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
EXAMPLE_LINES = (REPO_ROOT / "examples" / "edgewatch.yaml").read_text().splitlines()
# Characters that mean something to YAML, JSON or the ${ENV} substitution.
SYNTAX = st.sampled_from([":", "-", " ", "  ", "[", "]", "{", "}", ",", "&a", "*a", "!!python/object", "|", ">",
                          "'", '"', "#", "${X}", "${HOME:-x}", "<<: *a", "\t", "\n", "\x00", "\ufeff", "é", "1e999",
                          "NaN", "~", "null", "yes", "0x1F", "-1", "2026-01-01"])


@contextmanager
def bounded_memory() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_bytes < MAX_PEAK_BYTES, f"peak {peak_bytes / 2**20:.0f} MiB"


def only_clear_errors(load: Callable[[], Any], expected: type[Exception]) -> Any:
    """Run ``load``; a failure must be ``expected`` with a one-line-or-more message, not a crash."""
    with bounded_memory():
        try:
            return load()
        except expected as exc:
            assert str(exc).strip()
            return exc


# -- config YAML ---------------------------------------------------------------------------------

@st.composite
def mutated_example(draw: st.DrawFn) -> str:
    """The example config with lines deleted, repeated, swapped or sprinkled with syntax."""
    lines = list(EXAMPLE_LINES)
    for _ in range(draw(st.integers(1, 6))):
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "repeat", "swap", "insert", "append"]))
        if action == "delete":
            del lines[index]
        elif action == "repeat":
            lines.insert(index, lines[index])
        elif action == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        else:
            text = "".join(draw(st.lists(SYNTAX, min_size=1, max_size=6)))
            lines[index] = text if action == "insert" else lines[index] + text
    return "\n".join(lines) + "\n"


@st.composite
def alias_chains(draw: st.DrawFn) -> str:
    """Anchors whose aliases nest: the shape of an alias bomb, at sizes small and huge."""
    levels, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * width) + "]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
config_trees = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from([*Config.model_fields, "id", "name", "type", "sensors", "cameras", "bundle",
                                         "path", "quantity", "unit", "x"]), children, max_size=5)),
    max_leaves=25)


# A refused alias bomb walks 100k values (0.5 s here, several on a busy machine): what is checked is the
# outcome, not the time, so this test has no deadline.
@settings(FUZZ, max_examples=60, deadline=None)
@given(text=st.one_of(mutated_example(), alias_chains(), st.text(max_size=300),
                      config_trees.map(lambda tree: json.dumps(tree, allow_nan=True))))
def test_any_config_text_loads_or_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = only_clear_errors(lambda: load_config(path), ConfigError)
    assert isinstance(result, (Config, ConfigError))


# -- sensors JSON --------------------------------------------------------------------------------

json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(), st.text(max_size=12))
reading_keys = st.sampled_from(["name", "quantity", "unit", "value", "samples", "file", "rate_hz", "timestamp",
                                "column", "warn_above", "fault_above", "vibration", "rpm", "bearing", "readings", "x"])
json_trees = st.recursive(json_leaves, lambda children: st.one_of(
    st.lists(children, max_size=5), st.dictionaries(reading_keys, children, max_size=6)), max_leaves=40)
reading = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b"]), "quantity": st.sampled_from(["temperature", "vibration", "current"])},
    optional={"unit": st.sampled_from(["degC", "g", "A", "?"]), "value": json_leaves, "samples": st.lists(json_leaves),
              "rate_hz": json_leaves, "file": st.sampled_from(["burst.npy", "burst.csv", "../x.npy", "/dev/null", ""]),
              "timestamp": json_leaves, "vibration": json_trees})


@st.composite
def sensors_text(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["tree", "readings", "mutated", "nested"]))
    if kind == "tree":
        return json.dumps(draw(json_trees))
    if kind == "nested":
        depth = draw(st.integers(1, 200_000))
        return '{"readings": ' + "[" * depth + "]" * draw(st.integers(0, depth))
    text = json.dumps({"readings": draw(st.lists(reading, max_size=4))})
    if kind == "mutated" and text:
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "]", "}", ",", "NaN", "\x00", "[[[", '"'])) + text[cut + 1:]
    return text


@FUZZ
@given(text=sensors_text())
def test_any_sensors_file_gives_evidence_or_an_input_error(tmp_path: Path, text: str) -> None:
    np.save(tmp_path / "burst.npy", np.sin(np.arange(4096) / 3.0))
    (tmp_path / "burst.csv").write_text("t,g\n0,0.1\n1\n")
    path = tmp_path / "sensors.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = only_clear_errors(lambda: snapshot_file.evidence(path, now=0.0), InputError)
    assert isinstance(result, (list, InputError))


# -- frame bytes ---------------------------------------------------------------------------------

def encoded(fmt: str, mode: str) -> bytes:
    rng = np.random.default_rng(0)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, (24, 32), dtype=np.uint16))
    else:
        image = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).convert(mode)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


SAMPLES = [encoded(fmt, mode) for fmt, mode in [("PNG", "RGB"), ("PNG", "I;16"), ("PNG", "P"), ("JPEG", "RGB"),
                                                 ("JPEG", "L"), ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "I;16"),
                                                 ("WEBP", "RGB"), ("TIFF", "RGBA")]]


@st.composite
def frame_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "flipped", "truncated", "spliced"]))
    if kind == "random":
        return draw(st.binary(max_size=2048))
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    if kind == "flipped":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif kind == "truncated":
        del data[draw(st.integers(0, len(data) - 1)):]
    else:
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


def check_frame(data: bytes) -> None:
    result = only_clear_errors(lambda: decode_frame(data, "frame", max_px=1024), InputError)
    if isinstance(result, np.ndarray):
        assert result.ndim == 3 and result.shape[2] == 3 and result.dtype == np.uint8
        assert result.shape[0] * result.shape[1] <= MAX_DECODED_PIXELS


@FUZZ
@given(data=frame_bytes())
def test_any_frame_bytes_decode_or_are_an_input_error(data: bytes) -> None:
    check_frame(data)


def png_header(width: int, height: int, depth: int, colour: int) -> bytes:
    """A PNG whose header claims any size, with valid checksums and a little image data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(4096)))
            + chunk(b"IEND", b""))


@FUZZ
@given(width=st.integers(1, 2**31 - 1), height=st.integers(1, 2**31 - 1),
       depth=st.sampled_from([1, 2, 4, 8, 16]), colour=st.sampled_from([0, 2, 3, 4, 6]))
def test_a_header_claiming_any_size_is_refused_before_decoding(width: int, height: int, depth: int,
                                                               colour: int) -> None:
    data = png_header(width, height, depth, colour)
    if width * height > MAX_DECODED_PIXELS:
        with pytest.raises(InputError, match=r"refused before decoding|not a readable image"):
            decode_frame(data, "claimed.png")
    else:
        check_frame(data)

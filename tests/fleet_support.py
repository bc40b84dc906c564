"""Helpers for fleet tests: signed release folders made from the demo bundle, and a real HTTP server
on 127.0.0.1 serving a folder."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edge.bundle.manifest import MANIFEST_NAME
from edge.bundle.signing import generate_key, load_private_key, sign_manifest
from tests.service_support import DEMO_DIR

DEMO_BUNDLE = DEMO_DIR / "bundle"


def key_pair(path: Path) -> tuple[Any, Path]:
    """A fresh Ed25519 private key and the path of its public half."""
    generate_key(path)
    return load_private_key(path), path.with_name(path.name + ".pub")


def release_folder(out: Path, key: Any, created_at: str, model_bytes: bytes | None = None) -> Path:
    """The demo bundle, told apart by ``created_at``, optionally with other model bytes (the manifest's
    hashes updated to match), signed with ``key``."""
    shutil.copytree(DEMO_BUNDLE, out)
    manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    manifest["created_at"] = created_at
    if model_bytes is not None:
        (out / "image.onnx").write_bytes(model_bytes)
        for entry in manifest["files"]:
            if entry["path"] == "image.onnx":
                entry.update(sha256=hashlib.sha256(model_bytes).hexdigest(), bytes=len(model_bytes))
    data = json.dumps(manifest, indent=2).encode("utf-8")
    (out / MANIFEST_NAME).write_bytes(data)
    sign_manifest(out, data, key)
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """A real HTTP server for ``folder`` on 127.0.0.1; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

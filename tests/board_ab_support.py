"""The A/B board tests' pieces: a throwaway CA, the A/B image of the replay demo, and update roots
made from its slot A (a copy with one file changed, through debugfs: no mount, no second build)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from board import bundle
from board.build import BuildRequest, Built, build
from board.inject import Payload
from tests.board_support import REPO_ROOT, free_port, guest_config

VERSION_FILE = "/opt/edgewatch/lib/python3.11/site-packages/edge/__init__.py"


@dataclass(frozen=True)
class Pki:
    ca_cert: Path  # the keyring in the image
    key: Path  # the release signing key and its certificate, issued by the CA
    cert: Path


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_pki(folder: Path, name: str = "edgewatch test") -> Pki:
    """A CA and a signing certificate under it, as docs/fleet.md tells a user to make them."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = folder / "ca.key.pem", folder / "ca.cert.pem"
    key, csr, cert, ext = (folder / n for n in ("signing.key.pem", "signing.csr", "signing.cert.pem", "ext.cnf"))
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", ca_cert, "-days", "3650",
             "-subj", f"/O={name}/CN={name} CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", f"/O={name}/CN={name} release signing")
    ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n", encoding="utf-8")
    _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-days", "365",
             "-out", cert, "-extfile", ext)
    return Pki(ca_cert, key, cert)


def build_ab_image(work: Path, pki: Pki) -> tuple[Built, int]:
    port = free_port()
    config = guest_config(work / "config.yaml", port)
    request = BuildRequest(out=work / "edgewatch-ab.img", payload=Payload(config, (REPO_ROOT / "examples/demo",)),
                           extras="cloud,mqtt", serial_autologin=True, ab_keyring=pki.ca_cert)
    return build(request), port


def changed_root(image: Path, out: Path, path: str, text: str) -> Path:
    """Slot A of ``image`` as ``out`` with the file ``path`` replaced by ``text`` (debugfs, no mount)."""
    bundle.extract_root(image, out)
    local = out.with_name(out.name + ".file")
    local.write_text(text, encoding="utf-8")
    script = f"rm {path}\nwrite {local} {path}\nsif {path} mode 0100644\n"
    subprocess.run(["debugfs", "-w", "-f", "-", str(out)], input=script, text=True, check=True, capture_output=True)
    local.unlink()
    return out

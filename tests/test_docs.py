"""The docs describe the code as it is: every config snippet validates, every command line parses.

Snippets are partial (a ``sensors:`` list, an ``outputs:`` section), so each is wrapped into the
smallest complete config before validation. A renamed key or option fails here, naming the doc.
"""

from __future__ import annotations

import re
import shlex
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from edge.bundle.manifest import Label
from edge.cli.main import build_parser
from edge.settings import Config

DOCS = Path(__file__).resolve().parent.parent / "docs"
_BLOCK = re.compile(r"```(?P<lang>yaml|sh)\n(?P<body>.*?)```", re.DOTALL)
# `escalation.budget.max_usd_per_hour`, `assets[].profile`: config keys named in the prose
_KEY_PATH = re.compile(
    r"`((?:site|state_dir|model|assets|outputs|history|service|escalation|alerts|fleet)(?:\[\])?(?:\.[a-z_]+)+)`")
_GUIDES = ("quickstart-raspberry-pi", "jetson", "offline-install", "export", "enrollment", "sensors", "fleet",
           "troubleshooting", "technician")
_ASSET_KEYS = {"sensors", "cameras"}
_MINIMAL_ASSET: dict[str, Any] = {"id": "doc-asset", "sensors": [
    {"name": "t", "type": "command", "command": ["true"], "quantity": "temperature"}]}


def _blocks(lang: str) -> list[tuple[str, str]]:
    found = []
    for doc in sorted(DOCS.glob("*.md")):
        for match in _BLOCK.finditer(doc.read_text(encoding="utf-8")):
            if match["lang"] == lang:
                found.append((doc.name, match["body"]))
    return found


def _as_config(snippet: dict[str, Any]) -> dict[str, Any] | None:
    """Wrap a config snippet into a whole config; None for YAML that is not edgewatch config."""
    keys = set(snippet)
    if keys == {"vibration"}:  # a sensor's analytics block
        sensor = {"name": "v", "type": "command", "command": ["true"], "quantity": "vibration", **snippet}
        return {"assets": [{"id": "doc-asset", "sensors": [sensor]}]}
    if keys <= _ASSET_KEYS:
        asset = {"id": "doc-asset", **snippet}
        document: dict[str, Any] = {"assets": [asset]}
        if "cameras" in snippet:
            document["model"] = {"bundle": "/tmp/bundle"}
        return document
    if keys <= set(Config.model_fields):
        return {"assets": [_MINIMAL_ASSET], **snippet}
    return None


def _config_snippets() -> list[Any]:
    params = []
    for doc, body in _blocks("yaml"):
        if body.startswith("# overrides.yaml"):  # a release's config overrides: tests/fleet/test_fleet_overrides.py
            continue
        snippet = yaml.safe_load(body)
        if isinstance(snippet, dict) and _as_config(snippet) is not None:
            params.append(pytest.param(snippet, id=f"{doc}:{next(iter(snippet))}"))
    return params


def _command_lines() -> list[Any]:
    params = []
    for doc, body in _blocks("sh"):
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "sudo":  # sudo [-u USER] edgewatch ...
                words = words[3:] if words[1:2] == ["-u"] else words[1:]
            if words and words[0].split("/")[-1] == "edgewatch":
                params.append(pytest.param(words[1:], id=f"{doc}:{' '.join(words[1:3])}"))
    return params


@pytest.mark.parametrize("snippet", _config_snippets())
def test_config_snippet_validates(snippet: dict[str, Any]) -> None:
    Config.model_validate(_as_config(snippet))


def test_labels_snippets_validate() -> None:
    documents = [yaml.safe_load(body) for _, body in _blocks("yaml")]
    labels = [entry for document in documents if isinstance(document, dict) for entry in document.get("labels", [])]
    assert labels, "docs/export.md shows a labels file"
    for entry in labels:
        Label.model_validate(entry)


def _key_paths() -> list[Any]:
    """Key paths in the user guides (other docs also name Python attributes such as ``outputs.sinks``)."""
    docs = [DOCS / f"{name}.md" for name in _GUIDES]
    found = {(doc.name, m[1]) for doc in docs for m in _KEY_PATH.finditer(doc.read_text(encoding="utf-8"))}
    return [pytest.param(path, id=f"{doc}:{path}") for doc, path in sorted(found)]


def _field_model(annotation: Any) -> type[BaseModel] | None:
    """The config section a field holds: through Optional, list[...] and discriminated unions."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _field_model(arg)
        if found is not None:
            return found
    return None


@pytest.mark.parametrize("path", _key_paths())
def test_config_key_named_in_prose_exists(path: str) -> None:
    section: type[BaseModel] | None = Config
    for key in path.replace("[]", "").split("."):
        assert section is not None and key in section.model_fields, f"{path}: no key '{key}'"
        section = _field_model(section.model_fields[key].annotation)


@pytest.mark.parametrize("arguments", _command_lines())
def test_command_line_parses(arguments: list[str]) -> None:
    build_parser().parse_args(arguments)


def test_the_docs_show_snippets_and_commands() -> None:
    assert len(_config_snippets()) >= 5
    assert len(_command_lines()) >= 20

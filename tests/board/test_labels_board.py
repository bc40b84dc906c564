"""``edgewatch labels``: label embeddings computed on the board with the bundle's INT8 text tower and
tokenizer (no torch) match the workstation's export, and the bundle is updated atomically with valid hashes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.bundle.load import load_bundle
from edge.bundle.manifest import Label
from edge.cli.main import main
from edge.errors import BundleError, InputError
from edge.vision.labels import add_label, default_prompts, remove_label
from edge.vision.pipeline import score_image
from edge.vision.profile import bundle_fingerprint
from edge.vision.text import TextEncoder
from export.labels import embed_labels
from export.pipeline import ExportRequest, run
from export.sources import resolve
from export.towers import load as load_towers
from export.validate import Gate
from tests.service_support import DEMO_DIR

OIL = Label(name="coolant spray", severity="fault",
            prompts=["a photo of coolant spraying from a hose", "a photo of a wet floor under a leaking pump"])
# INT8 (dynamic) text tower on the board vs the FP32 torch tower on the workstation: the tiny tower
# measured 0.9992-0.9997 over the built-in labels and one new label.
MIN_COSINE = 0.995


@pytest.fixture(scope="module")
def exported(tiny_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    request = ExportRequest(model=str(tiny_clip), out=tmp_path_factory.mktemp("bundles") / "clip",
                            gate=Gate(min_cosine=0.9, min_top1=0.0), with_text_model=True, progress=False)
    return run(request).bundle


@pytest.fixture
def bundle(exported: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(exported, copy)
    return copy


def workstation_embedding(checkpoint: Path, label: Label) -> np.ndarray:
    """What ``export --labels`` computes for this label: the FP32 torch text tower."""
    return embed_labels([label], load_towers(resolve(str(checkpoint))).text)[0]


def test_board_embedding_matches_the_workstation_export(bundle: Path, tiny_clip: Path) -> None:
    board = TextEncoder.load(load_bundle(bundle)).label_embedding(OIL.prompts)
    reference = workstation_embedding(tiny_clip, OIL)
    assert board.shape == reference.shape and abs(float(np.linalg.norm(board)) - 1.0) < 1e-5
    assert float(board @ reference) >= MIN_COSINE
    # the labels shipped by the export, recomputed on the board, agree just as well
    loaded = load_bundle(bundle)
    assert loaded.manifest.labels is not None
    first = loaded.manifest.labels.entries[0]
    assert float(TextEncoder.load(loaded).label_embedding(first.prompts) @ loaded.label_embeddings()[0]) >= MIN_COSINE


def test_add_and_remove_keep_the_bundle_verifiable(bundle: Path, tiny_clip: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    before = load_bundle(bundle)
    assert before.manifest.labels is not None
    count = len(before.manifest.labels.entries)
    fingerprint, shipped = bundle_fingerprint(before), before.label_embeddings()

    assert main(["labels", "add", str(bundle), "--name", OIL.name, "--severity", "fault",
                 *(arg for prompt in OIL.prompts for arg in ("--prompt", prompt))]) == 0
    assert "added 'coolant spray' (fault, 2 prompt(s))" in capsys.readouterr().out
    assert main(["bundle", "verify", str(bundle)]) == 0
    after = load_bundle(bundle)
    assert after.manifest.labels is not None
    assert [e.name for e in after.manifest.labels.entries][-1] == "coolant spray" and \
        len(after.manifest.labels.entries) == count + 1
    embeddings = after.label_embeddings()
    np.testing.assert_array_equal(embeddings[:count], shipped)  # the others are untouched
    assert float(embeddings[-1] @ workstation_embedding(tiny_clip, OIL)) >= MIN_COSINE
    assert bundle_fingerprint(after) == fingerprint  # enrolled profiles stay valid
    frame = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    assert "coolant spray" in score_image(after, None, frame).labels  # zero-shot scores it
    assert sorted(p.name for p in bundle.glob("labels*.npy")) == [after.manifest.labels.embeddings_file]

    assert main(["labels", "list", str(bundle)]) == 0
    assert "coolant spray" in capsys.readouterr().out
    assert main(["labels", "add", str(bundle), "--name", "coolant spray"]) == 1
    assert "already has a label 'coolant spray'" in capsys.readouterr().err

    assert main(["labels", "remove", str(bundle), "--name", "coolant spray"]) == 0
    assert main(["bundle", "verify", str(bundle)]) == 0
    removed = load_bundle(bundle)
    np.testing.assert_array_equal(removed.label_embeddings(), shipped)
    assert len(list(bundle.glob("labels*.npy"))) == 1 and not list(bundle.glob(".*partial"))


def test_default_prompts_and_bad_requests(bundle: Path) -> None:
    manifest = add_label(bundle, Label(name="rust", severity="warning", prompts=default_prompts("rust")))
    assert manifest.labels is not None and manifest.labels.entries[-1].prompts[0] == "a photo of rust."
    with pytest.raises(InputError, match="has no label 'sparks'"):
        remove_label(bundle, "sparks")
    with pytest.raises(InputError, match="every prompt must be a non-empty sentence"):
        add_label(bundle, Label(name="blank", severity="ok", prompts=["  "]))


def test_a_tampered_bundle_is_refused_and_left_as_it_was(bundle: Path) -> None:
    text_model = load_bundle(bundle).manifest.text_model
    assert text_model is not None
    model = bundle / text_model.file
    model.write_bytes(model.read_bytes()[:-1])
    manifest_before = (bundle / "manifest.json").read_text()
    with pytest.raises(BundleError, match="truncated or replaced"):
        add_label(bundle, OIL)
    assert (bundle / "manifest.json").read_text() == manifest_before


def test_without_a_text_model_the_command_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "demo"
    shutil.copytree(DEMO_DIR / "bundle", bundle)
    manifest_before = json.loads((bundle / "manifest.json").read_text())
    assert main(["labels", "add", str(bundle), "--name", "smoke"]) == 1
    assert "has no text model, so labels cannot be computed on the board" in capsys.readouterr().err
    assert json.loads((bundle / "manifest.json").read_text()) == manifest_before
    assert main(["labels", "list", str(bundle)]) == 0
    assert "labels are fixed at export" in capsys.readouterr().out
    # removing needs no text model: the stored row goes
    assert main(["labels", "remove", str(bundle), "--name", "red-hot panel"]) == 0
    assert main(["bundle", "verify", str(bundle)]) == 0


def test_siglip_board_embedding_matches_the_workstation_export(tmp_path: Path) -> None:
    """SigLIP pads to max_length and pools at the last position: the board's tokenizer.json does the same."""
    from bench.checkpoints import build_tiny_siglip

    checkpoint = build_tiny_siglip(tmp_path / "siglip")
    request = ExportRequest(model=str(checkpoint), out=tmp_path / "bundle", gate=Gate(min_cosine=0.9, min_top1=0.0),
                            with_text_model=True, progress=False)
    bundle = load_bundle(run(request).bundle)
    assert bundle.manifest.text_model is not None and bundle.manifest.text_model.pad_to_max_length
    board = TextEncoder.load(bundle).label_embedding(OIL.prompts)
    assert float(board @ workstation_embedding(checkpoint, OIL)) >= MIN_COSINE

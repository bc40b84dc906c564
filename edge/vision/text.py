"""The bundle's INT8 text tower on the board: prompts -> label embeddings, with no torch.

Only bundles exported with ``--with-text-model`` carry it (``text_model`` in the manifest): the
ONNX text encoder and the checkpoint's tokenizer as ``tokenizer.json``, which already truncates
and pads the way the export did. Label embeddings are built as at export (``export/labels.py``):
each prompt's embedding normalised, averaged over the label's prompts, normalised again.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from edge.bundle.load import Bundle
from edge.errors import BundleError, InputError
from edge.vision.encoder import l2_normalise

log = logging.getLogger(__name__)


class TextEncoder:
    """Runs a bundle's text model; construct with :meth:`load`."""

    def __init__(self, bundle: Bundle, tokenizer: Any, session: Any) -> None:
        self.bundle = bundle
        self._tokenizer = tokenizer
        self._session = session

    @classmethod
    def load(cls, bundle: Bundle) -> TextEncoder:
        text = bundle.manifest.text_model
        if text is None:
            raise BundleError(f"bundle {bundle.root} has no text model, so labels cannot be computed on the board: "
                              "export it again with --with-text-model, or change its labels with export --labels")
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise BundleError("labels on the board need the 'tokenizers' package: pip install 'edgewatch[labels]'") \
                from exc
        import onnxruntime as ort

        tokenizer_path, model_path = bundle.root / text.tokenizer_file, bundle.root / text.file
        tokenizer_bytes, model = bundle.read(text.tokenizer_file), bundle.read(text.file)  # checked; no path again
        try:
            tokenizer = Tokenizer.from_str(tokenizer_bytes.decode("utf-8"))
        except Exception as exc:  # tokenizers raises plain Exceptions for unreadable files
            raise BundleError(f"{tokenizer_path}: the tokenizer cannot be read: {exc}") from exc
        try:
            session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad models
            raise BundleError(f"{model_path}: onnxruntime cannot load the text model: {exc}") from exc
        return cls(bundle, tokenizer, session)

    def embed_prompts(self, prompts: list[str]) -> np.ndarray:
        """(P, D) float32 unit embeddings, one per prompt."""
        if not prompts or any(not prompt.strip() for prompt in prompts):
            raise InputError("every prompt must be a non-empty sentence")
        text = self.bundle.manifest.text_model
        assert text is not None  # load() checked
        encodings = self._tokenizer.encode_batch(prompts)
        feeds = {text.input_ids_name: np.array([e.ids for e in encodings], dtype=np.int64)}  # (P, L)
        if text.attention_mask_name:
            feeds[text.attention_mask_name] = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        try:
            (embeddings,) = self._session.run([text.embedding_output], feeds)
        except Exception as exc:  # onnxruntime's errors carry no stable type
            raise BundleError(f"bundle {self.bundle.root}: the text model failed: {exc}") from exc
        return l2_normalise(np.asarray(embeddings, dtype=np.float32))

    def label_embedding(self, prompts: list[str]) -> np.ndarray:
        """(D,) float32: the normalised mean of the prompts' embeddings (CLIP's prompt ensembling)."""
        mean = self.embed_prompts(prompts).mean(axis=0)
        return l2_normalise(mean[None, :])[0]

"""What is sent to the cloud model and what must come back: the prompt, the reply schema, the estimate.

A request is plain JSON (it waits in the outbox while offline), built from the local verdict:
a system prompt describing the asset, the evidence and readings as text with units, and the
frames as data URLs only when the asset allows images to leave the device.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from edge.config.section import Section
from edge.escalation.budget import Cost, price
from edge.escalation.config import EscalationConfig
from edge.escalation.images import PreparedImage, image_tokens
from edge.evidence import Evidence, Verdict

_CHARS_PER_TOKEN = 4  # a deliberately pessimistic rule of thumb for English/JSON text
_MESSAGE_OVERHEAD_TOKENS = 8


class CloudAnswer(Section):
    """The reply the cloud model must give (validated; anything else is a malformed reply)."""

    condition: Literal["ok", "warning", "fault"] = Field(description="The model's verdict.")
    confidence: float = Field(ge=0, le=1, description="How sure the model is, 0..1.")
    label: str | None = Field(description="Short name of the condition seen, e.g. 'oil leak'; null if none.")
    explanation: str = Field(max_length=2000, description="One or two sentences a technician can act on.")


ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "condition": {"type": "string", "enum": ["ok", "warning", "fault"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "label": {"type": ["string", "null"]},
        "explanation": {"type": "string"},
    },
    "required": ["condition", "confidence", "label", "explanation"],
    "additionalProperties": False,
}

RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "machine_verdict", "strict": True, "schema": ANSWER_SCHEMA},
}

_SYSTEM_PROMPT = (
    "You are a maintenance engineer's assistant judging the condition of one industrial machine. "
    "An edge device watches it with a camera and sensors and was unsure. Judge from the evidence and "
    "any images: condition 'ok' (normal), 'warning' (plan maintenance) or 'fault' (act now), a "
    "confidence from 0 to 1, a short label for what you see (null if nothing specific), and a one- or "
    "two-sentence explanation. Answer only with JSON matching the schema."
)


@dataclass(frozen=True)
class CloudRequest:
    """One escalation, ready to send (and to store in the outbox as JSON)."""

    model: str
    messages: list[dict[str, Any]]
    max_output_tokens: int
    estimate: Cost
    image_count: int

    def to_json(self) -> str:
        return json.dumps({"model": self.model, "messages": self.messages, "max_output_tokens": self.max_output_tokens,
                           "estimate": self.estimate.to_dict(), "image_count": self.image_count})

    @classmethod
    def from_json(cls, text: str) -> CloudRequest:
        data = json.loads(text)
        estimate = data["estimate"]
        return cls(data["model"], data["messages"], data["max_output_tokens"],
                   Cost(estimate["input_tokens"], estimate["output_tokens"], estimate["usd"]), data["image_count"])


def describe_evidence(item: Evidence) -> str:
    state = "unhealthy (no opinion)" if item.condition is None else item.condition.value
    parts = [f"- {item.source} ({item.kind.value}): {state}, confidence {item.confidence:.2f}"]
    if item.fault_type:
        parts.append(f"type={item.fault_type}")
    if item.values:
        parts.append("readings: " + ", ".join(f"{key}={_fmt(value)}" for key, value in sorted(item.values.items())))
    if item.reasons:
        parts.append("because " + "; ".join(item.reasons))
    return "; ".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def build_request(
    asset_id: str,
    asset_name: str,
    verdict: Verdict,
    triggers: list[str],
    images: list[PreparedImage],
    config: EscalationConfig,
    image_caption: str = "",
) -> CloudRequest:
    """Text always; images only when the caller passes them (the asset allows frames to leave),
    with ``image_caption`` saying when each was taken."""
    lines = [
        f"Asset: {asset_name or asset_id} (id {asset_id}).",
        f"Local verdict: {verdict.condition.value}, confidence {verdict.confidence:.2f}.",
        f"Why the device asks: {'; '.join(triggers)}.",
        "Local evidence:",
        *(describe_evidence(item) for item in verdict.evidence),
        "Local reasoning:",
        *(f"- {reason}" for reason in verdict.reasons),
    ]
    if not images:
        lines.append("No image is attached (images are not allowed to leave this site); judge from the text.")
    elif image_caption:
        lines.append(image_caption)
    text = "\n".join(lines)
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    content += [{"type": "image_url", "image_url": {"url": image.data_url, "detail": image.detail}} for image in images]
    messages: list[dict[str, Any]] = [{"role": "system", "content": _SYSTEM_PROMPT},
                                      {"role": "user", "content": content}]

    pricing = config.model_pricing
    text_tokens = math.ceil((len(_SYSTEM_PROMPT) + len(text) + len(json.dumps(ANSWER_SCHEMA))) / _CHARS_PER_TOKEN)
    input_tokens = text_tokens + 2 * _MESSAGE_OVERHEAD_TOKENS + sum(
        image_tokens(image.width, image.height, image.detail, pricing) for image in images
    )
    estimate = price(pricing, input_tokens, config.max_output_tokens)
    return CloudRequest(config.model, messages, config.max_output_tokens, estimate, len(images))

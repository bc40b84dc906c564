"""Escalation settings (the top-level ``escalation:`` section): cloud endpoint, policy, costs, outbox."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge.config.section import Section
from edge.vision.config import LearningConfig


class ModelPricing(Section):
    """What one model charges, and how it counts image tokens (providers differ a lot here)."""

    input_usd_per_mtok: float = Field(ge=0, description="Price of one million input tokens, USD.")
    output_usd_per_mtok: float = Field(ge=0, description="Price of one million output tokens, USD.")
    image_low_tokens: int = Field(ge=0, description="Tokens billed for one detail=low image.")
    image_base_tokens: int = Field(ge=0, description="Fixed tokens of one detail=high image.")
    image_tile_tokens: int = Field(ge=0, description="Tokens per 512-px tile of a detail=high image.")


def default_pricing() -> dict[str, ModelPricing]:
    # OpenAI's published rules; gpt-4o-mini bills images at ~33x the tokens, so it is not cheaper per image
    return {
        "gpt-4o": ModelPricing(input_usd_per_mtok=2.50, output_usd_per_mtok=10.00,
                               image_low_tokens=85, image_base_tokens=85, image_tile_tokens=170),
        "gpt-4o-mini": ModelPricing(input_usd_per_mtok=0.15, output_usd_per_mtok=0.60,
                                    image_low_tokens=2833, image_base_tokens=2833, image_tile_tokens=5667),
    }


class BudgetConfig(Section):
    max_usd_per_hour: float = Field(0.50, ge=0, description="Stop escalating once this much was spent in the last "
                                    "hour.")
    max_usd_per_day: float = Field(2.00, ge=0, description="Stop escalating once this much was spent in the last 24 h.")


class BreakerConfig(Section):
    failure_threshold: int = Field(5, ge=1, description="Consecutive failed calls that open the circuit.")
    cooldown_s: float = Field(300.0, gt=0, description="How long the circuit stays open before one probe call.")


class OutboxConfig(Section):
    max_pending: int = Field(500, ge=1, description="Queued escalations kept while offline; the oldest go first.")
    keep_done: int = Field(2000, ge=0, description="Finished escalations kept for cool-down and audit.")


class PolicyConfig(Section):
    confidence_below: float = Field(0.6, ge=0, le=1, description="Escalate when the local confidence is below this.")
    opinion_confidence_below: float = Field(0.6, ge=0, le=1, description="Escalate when one healthy camera's or "
                                            "sensor's own opinion is less confident than this, however sure the "
                                            "fused verdict (a confident sensor can mask an unsure camera).")
    on_unhealthy_device: bool = Field(False, description="Also escalate when the confidence is low only because "
                                      "a camera or sensor is unhealthy (off: that is reported, not asked about; a "
                                      "cloud cannot stand in for a dead sensor or see into a dark frame).")
    on_disagreement: bool = Field(True, description="Escalate when vision and sensors disagree about one failure "
                                  "mode.")
    on_novelty: bool = Field(True, description="Escalate when vision sees something unlike the enrolled normal "
                             "frames and no known label fits.")
    novelty_p_anomaly: float = Field(0.95, ge=0, le=1, description="p_anomaly at or above which a frame is novel.")
    label_fits_p: float = Field(0.5, ge=0, le=1, description="A label 'fits' when its probability reaches this.")
    cooldown_s: float = Field(3600.0, ge=0, description="Never ask about the same situation twice within this.")
    duplicate_frame_bits: int = Field(6, ge=0, le=64, description="Frames whose 64-bit difference hashes differ in "
                                      "at most this many bits count as the same frame.")


class EscalationConfig(Section):
    """Asking a cloud model (any OpenAI-compatible endpoint) when the device is unsure."""

    enabled: bool = Field(False, description="Off by default: nothing leaves the device.")
    base_url: str = Field("https://api.openai.com/v1", description="OpenAI-compatible endpoint.")
    model: str = Field("gpt-4o", description="Model name sent in the request.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key.")
    api_key_file: str = Field("openai_api_key", description="Credential file: a name under $CREDENTIALS_DIRECTORY "
                              "(systemd LoadCredential=) or an absolute path; used when the variable is unset.")
    timeout_s: float = Field(30.0, gt=0, description="Per-request timeout.")
    max_retries: int = Field(2, ge=0, le=10, description="SDK retries on 408/409/429/5xx (Retry-After honoured).")
    detail: Literal["low", "high"] = Field("low", description="Image detail: low = 512 px; high = fit 2048, then "
                                           "short side 768.")
    max_images: int = Field(1, ge=0, le=20, description="The asset's last K frames sent per escalation, oldest first "
                            "(a sliding window over its checks), when images are allowed; fewer when the caps below "
                            "would be exceeded.")
    max_image_tokens: int = Field(8000, ge=0, description="Cap on the image tokens of one escalation (newest frames "
                                  "are kept).")
    max_image_usd: float = Field(0.02, ge=0, description="Cap on what the images of one escalation may cost, USD.")
    jpeg_quality: int = Field(85, ge=30, le=95, description="JPEG quality of frames sent.")
    max_output_tokens: int = Field(300, ge=50, description="Cap on the reply length (and its cost).")
    pricing: dict[str, ModelPricing] = Field(default_factory=default_pricing,
                                             description="Prices and image-token rules per model name.")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="When to escalate.")
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description="Spending caps.")
    breaker: BreakerConfig = Field(default_factory=BreakerConfig, description="Circuit breaker.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable queue for offline periods.")
    learning: LearningConfig = Field(default_factory=LearningConfig, description="Learning from cloud answers.")

    @model_validator(mode="after")
    def _priced(self) -> EscalationConfig:
        if self.model not in self.pricing:
            known = ", ".join(sorted(self.pricing))
            raise ValueError(f"no pricing for model '{self.model}': add it under 'pricing' (known: {known})")
        return self

    @property
    def model_pricing(self) -> ModelPricing:
        return self.pricing[self.model]

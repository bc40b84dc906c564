"""The cloud client: one call to an OpenAI-compatible chat-completions endpoint through the official SDK.

The SDK retries 408/409/429/5xx itself, honouring Retry-After. Everything it raises is translated
here, at one boundary, into ``CloudUnavailable`` (transient: keep the escalation in the outbox and
count a breaker failure) or ``CloudRejected`` (permanent: record the escalation as failed). A reply
that does not validate against the answer schema is asked once more, then rejected.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from edge.config.loader import first_problem
from edge.errors import CloudError, ConfigError
from edge.escalation.config import EscalationConfig
from edge.escalation.request import RESPONSE_FORMAT, CloudAnswer, CloudRequest

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"


class CloudUnavailable(CloudError):
    """Offline, timed out, rate limited or a server error: worth trying again later."""


class CloudRejected(CloudError):
    """The request or the reply is wrong (bad key, unknown model, malformed answer): retrying won't help."""


@dataclass(frozen=True)
class CloudReply:
    answer: CloudAnswer
    model: str
    input_tokens: int
    output_tokens: int
    attempts: int  # 2 when the first reply was malformed


def resolve_api_key(config: EscalationConfig, environ: dict[str, str] | None = None) -> str:
    """The API key from the environment, else from a credential file (systemd LoadCredential=)."""
    env = os.environ if environ is None else environ
    key = env.get(config.api_key_env, "").strip()
    if key:
        return key
    path = Path(config.api_key_file)
    if not path.is_absolute():
        directory = env.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise ConfigError(
                f"no cloud API key: set {config.api_key_env}, or give 'escalation.api_key_file' as an absolute "
                f"path, or load it with systemd 'LoadCredential={config.api_key_file}:/path/to/key'"
            )
        path = Path(directory) / path
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cloud API key file {path} cannot be read: {exc.strerror or exc}") from exc
    if not key:
        raise ConfigError(f"cloud API key file {path} is empty")
    return key


def _sdk_errors() -> dict[type[BaseException], tuple[type[CloudError], str]]:
    """Every exception the SDK exports -> (our class, what to tell the user). A test keeps this complete."""
    import openai
    import openai._exceptions

    unavailable, rejected = CloudUnavailable, CloudRejected
    table: dict[type[BaseException], tuple[type[CloudError], str]] = {
        openai.APITimeoutError: (unavailable, "did not answer within the timeout"),
        openai.APIConnectionError: (unavailable, "cannot be reached (offline or wrong base_url?)"),
        openai.RateLimitError: (unavailable, "kept rate-limiting (429) through every retry"),
        openai.InternalServerError: (unavailable, "kept failing with a server error (5xx) through every retry"),
        openai.ConflictError: (unavailable, "reported a conflict (409) through every retry"),
        openai.AuthenticationError: (rejected, "rejected the API key (401): check the key"),
        openai.PermissionDeniedError: (rejected, "denied access (403): the key may not use this model"),
        openai.NotFoundError: (rejected, "does not know this model or path (404): check 'model' and 'base_url'"),
        openai.BadRequestError: (rejected, "rejected the request as invalid (400)"),
        openai.UnprocessableEntityError: (rejected, "could not process the request (422)"),
        openai.APIStatusError: (rejected, "answered with an unexpected HTTP status"),
        openai.APIResponseValidationError: (rejected, "answered with a body that is not a chat completion"),
        openai.LengthFinishReasonError: (rejected, "stopped at the token limit before finishing its answer"),
        openai.ContentFilterFinishReasonError: (rejected, "withheld its answer (content filter)"),
        openai.APIError: (unavailable, "failed"),
        openai.OpenAIError: (rejected, "client failed"),
    }
    # exported but not raised by chat completions; mapped so nothing falls through untranslated
    for name in ("OAuthError", "InvalidWebhookSignatureError", "WebSocketConnectionClosedError",
                 "WebSocketQueueFullError", "SubjectTokenProviderError"):
        extra = getattr(openai, name, None) or getattr(openai._exceptions, name, None)
        if isinstance(extra, type):
            table[extra] = (rejected, f"client failed ({name})")
    return table


def translate(exc: BaseException, base_url: str) -> CloudError:
    """Map an SDK exception to ours by its nearest mapped class (status errors by status code)."""
    table = _sdk_errors()
    for klass in type(exc).__mro__:
        if klass in table:
            ours, what = table[klass]
            status = getattr(exc, "status_code", None)
            if klass.__name__ == "APIStatusError" and isinstance(status, int) and status >= 500:
                ours = CloudUnavailable
            detail = f" (HTTP {status})" if isinstance(status, int) else ""
            return ours(f"cloud model at {base_url} {what}{detail}")
    return CloudRejected(f"cloud model at {base_url} failed unexpectedly: {type(exc).__name__}: {exc}")


class CloudClient:
    """Sends a ``CloudRequest`` and returns a validated ``CloudReply``."""

    def __init__(self, config: EscalationConfig, api_key: str | None = None) -> None:
        try:
            import openai
        except ImportError as exc:  # the 'cloud' extra is optional on the board
            raise ConfigError("escalation needs the 'openai' package: pip install 'edgewatch[cloud]'") from exc
        self._config = config
        key = api_key or resolve_api_key(config)
        try:
            self._sdk: openai.OpenAI = openai.OpenAI(
                api_key=key, base_url=config.base_url, timeout=config.timeout_s, max_retries=config.max_retries,
            )
        except OSError as exc:  # TLS set-up reads the CA bundle now: a minimal system may have none
            raise ConfigError(f"cannot set up the cloud client for {config.base_url}: the CA certificates could not "
                              f"be read ({exc}); install ca-certificates or point SSL_CERT_FILE at a bundle") from exc

    def close(self) -> None:
        self._sdk.close()

    def ask(self, request: CloudRequest, idempotency_key: str) -> CloudReply:
        """One escalation; a malformed reply is asked once more, then rejected."""
        problem = ""
        for attempt in (1, 2):
            try:
                return self._parse(self._complete(request, idempotency_key), attempt)
            except _Malformed as exc:
                problem = str(exc)
                log.warning("cloud reply %d for %s was malformed: %s", attempt, idempotency_key, problem)
        raise CloudRejected(f"cloud model at {self._config.base_url} answered malformed JSON twice: {problem}")

    def _complete(self, request: CloudRequest, idempotency_key: str) -> Any:
        try:
            return self._sdk.chat.completions.create(  # type: ignore[call-overload]
                model=request.model,
                messages=request.messages,
                response_format=RESPONSE_FORMAT,
                max_completion_tokens=request.max_output_tokens,
                extra_headers={IDEMPOTENCY_HEADER: idempotency_key},
            )
        except ValueError as exc:  # a 200 whose body is not JSON surfaces as a decode error
            raise _Malformed(f"body is not JSON: {exc}") from exc
        except Exception as exc:
            import openai

            if isinstance(exc, openai.OpenAIError):
                raise translate(exc, self._config.base_url) from exc
            raise

    def _parse(self, completion: Any, attempt: int) -> CloudReply:
        choices = getattr(completion, "choices", None) or []
        if not choices:
            raise _Malformed("reply has no choices")
        choice = choices[0]
        if getattr(choice, "finish_reason", None) == "length":
            raise _Malformed("reply was cut off at the token limit")
        content = getattr(choice.message, "content", None)
        if not content:
            raise _Malformed("reply has no content")
        try:
            answer = CloudAnswer.model_validate(json.loads(content))
        except json.JSONDecodeError as exc:
            raise _Malformed(f"content is not JSON ({exc.msg} at {exc.pos})") from exc
        except ValidationError as exc:
            raise _Malformed(f"content does not match the schema: {first_problem(exc, CloudAnswer)}") from exc
        usage = getattr(completion, "usage", None)
        return CloudReply(
            answer=answer,
            model=str(getattr(completion, "model", "") or self._config.model),
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            attempts=attempt,
        )


class _Malformed(Exception):
    """A reply that is not a valid answer; asked once more before giving up."""

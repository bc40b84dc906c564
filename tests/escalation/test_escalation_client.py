"""The cloud client against the real local OpenAI-compatible server: retries, faults, errors, keys."""

from __future__ import annotations

import inspect
import itertools
import json
from pathlib import Path

import openai
import pytest

from edge.errors import CloudError, ConfigError
from edge.escalation.client import CloudClient, CloudRejected, CloudUnavailable, _sdk_errors, resolve_api_key, translate
from edge.escalation.escalator import Escalator
from edge.escalation.local_server import Fault, LocalCloudServer
from edge.escalation.request import build_request
from edge.evidence import Condition
from tests.cloud_helpers import config_for, unsure


def _request(config):
    return build_request("pump", "Feed pump", unsure().verdict, ["asked on demand"], [], config)


def test_answer_is_validated_and_derived_from_the_evidence(cloud: LocalCloudServer) -> None:
    config = config_for(cloud.url)
    reply = CloudClient(config, api_key="test").ask(_request(config), "k1")
    assert reply.answer.condition == "warning" and reply.answer.label == "outer_race"
    assert reply.input_tokens > 100 and reply.output_tokens > 0 and reply.attempts == 1
    sent = cloud.completions()[0]
    assert sent.idempotency_key == "k1"
    assert sent.body["response_format"]["json_schema"]["strict"] is True
    assert "velocity_rms_mm_s=5.2" in sent.text and "Feed pump" in sent.text


def test_retry_after_is_honoured(cloud: LocalCloudServer) -> None:
    config = config_for(cloud.url, max_retries=3)
    cloud.inject(Fault.rate_limited(0.3), Fault.rate_limited(0.3))
    reply = CloudClient(config, api_key="test").ask(_request(config), "k1")
    arrivals = [r.at for r in cloud.completions()]
    assert [r.status for r in cloud.completions()] == [429, 429, 200]
    assert reply.answer.condition == "warning"
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(0.29 <= gap < 1.5 for gap in gaps), gaps


def test_persistent_503_is_unavailable_after_retries(cloud: LocalCloudServer) -> None:
    config = config_for(cloud.url, max_retries=2)
    cloud.fail_always(Fault.unavailable(0.01))
    with pytest.raises(CloudUnavailable, match=r"server error \(5xx\).*HTTP 503"):
        CloudClient(config, api_key="test").ask(_request(config), "k1")
    assert len(cloud.completions()) == 3


def test_timeout_is_unavailable(cloud: LocalCloudServer) -> None:
    config = config_for(cloud.url, timeout_s=0.2)
    cloud.inject(Fault.slow(1.0))
    with pytest.raises(CloudUnavailable, match="did not answer within the timeout"):
        CloudClient(config, api_key="test").ask(_request(config), "k1")


def test_connection_refused_is_unavailable() -> None:
    with LocalCloudServer() as server:
        url = server.url
    config = config_for(url)
    with pytest.raises(CloudUnavailable, match="cannot be reached"):
        CloudClient(config, api_key="test").ask(_request(config), "k1")


def test_dropped_connection_is_unavailable(cloud: LocalCloudServer) -> None:
    config = config_for(cloud.url)
    cloud.inject(Fault(drop=True))
    with pytest.raises(CloudUnavailable):
        CloudClient(config, api_key="test").ask(_request(config), "k1")


def test_unauthorised_is_rejected(cloud: LocalCloudServer) -> None:
    config = config_for(cloud.url)
    cloud.inject(Fault(status=401))
    with pytest.raises(CloudRejected, match="rejected the API key"):
        CloudClient(config, api_key="test").ask(_request(config), "k1")


@pytest.mark.parametrize("fault", [Fault(body="{not json"), Fault(content="sure, looks fine"),
                                   Fault(content=json.dumps({"condition": "broken", "confidence": 2}))])
def test_malformed_reply_is_retried_once(cloud: LocalCloudServer, fault: Fault) -> None:
    config = config_for(cloud.url)
    cloud.inject(fault)
    reply = CloudClient(config, api_key="test").ask(_request(config), "k1")
    assert reply.attempts == 2 and len(cloud.completions()) == 2


def test_an_answer_off_the_schema_names_the_field_and_the_problem(cloud: LocalCloudServer) -> None:
    config = config_for(cloud.url)
    off = json.dumps({"condition": "ok", "confidence": 2, "label": None, "explanation": "fine"})
    cloud.inject(Fault(content=off), Fault(content=off))
    with pytest.raises(CloudRejected, match=r"does not match the schema: confidence: Input should be less than"):
        CloudClient(config, api_key="test").ask(_request(config), "k1")


def test_malformed_twice_is_recorded_as_failed_and_the_local_verdict_stands(cloud: LocalCloudServer,
                                                                           tmp_path: Path) -> None:
    config = config_for(cloud.url)
    cloud.inject(Fault(body="{not json"), Fault(content="[]"))
    fused = unsure()
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="test")) as escalator:
        verdict = escalator.consider(fused, on_demand=True)
        (item,) = escalator.outbox.items()
    assert len(cloud.completions()) == 2
    assert verdict.condition is fused.verdict.condition and verdict.confidence == fused.verdict.confidence
    assert verdict.escalation["status"] == "failed" and "malformed JSON twice" in verdict.escalation["why"]
    assert item.status == "failed" and "malformed" in item.error and item.attempts == 1


def test_every_sdk_exception_has_a_mapping() -> None:
    import openai._exceptions

    exported = {obj for module in (openai, openai._exceptions)
                for name, obj in inspect.getmembers(module, inspect.isclass)
                if issubclass(obj, openai.OpenAIError) and not name.startswith("_")}
    unmapped = sorted(klass.__name__ for klass in exported if klass not in _sdk_errors())
    assert not unmapped, f"openai exceptions without a CloudError mapping: {unmapped}"


def test_translate_keeps_status_and_class() -> None:
    import httpx2

    request = httpx2.Request("POST", "http://x/v1/chat/completions")
    response = httpx2.Response(502, request=request)
    error = translate(openai.APIStatusError("bad gateway", response=response, body=None), "http://x/v1")
    assert isinstance(error, CloudUnavailable) and "HTTP 502" in str(error)
    assert isinstance(translate(RuntimeError("?"), "http://x/v1"), CloudError)


def test_api_key_from_env_then_credentials_directory(tmp_path: Path) -> None:
    config = config_for("http://127.0.0.1:9/v1")
    assert resolve_api_key(config, {"OPENAI_API_KEY": " sk-env \n"}) == "sk-env"
    (tmp_path / "openai_api_key").write_text("sk-file\n")
    assert resolve_api_key(config, {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "sk-file"
    with pytest.raises(ConfigError, match="LoadCredential"):
        resolve_api_key(config, {})
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        resolve_api_key(config_for("http://x", api_key_file=str(tmp_path / "empty")), {})


def test_answer_changes_the_verdict_only_when_more_confident(cloud: LocalCloudServer, tmp_path: Path) -> None:
    config = config_for(cloud.url)
    with Escalator(config, tmp_path, client=CloudClient(config, api_key="test")) as escalator:
        verdict = escalator.consider(unsure(), on_demand=True)
    assert verdict.escalated and verdict.escalation["status"] == "answered"
    assert verdict.condition is Condition.WARNING and verdict.confidence == pytest.approx(0.8)
    assert verdict.reasons[0].startswith("cloud (gpt-4o): warning 'outer_race' p=0.80")
    assert verdict.escalation["cost"]["usd"] > 0


def test_server_replays_an_answered_idempotency_key(cloud: LocalCloudServer) -> None:
    config = config_for(cloud.url)
    client = CloudClient(config, api_key="test")
    first = client.ask(_request(config), "same")
    second = client.ask(_request(config), "same")
    assert first.answer == second.answer
    assert cloud.answered_keys == ["same"] and [r.replayed for r in cloud.completions()] == [False, True]
    assert client.ask(_request(config), "other").attempts == 1  # a new key is answered, not replayed or retried
    assert cloud.answered_keys == ["same", "other"]


def test_a_missing_ca_bundle_is_a_config_error_naming_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A minimal board image without ca-certificates: the client cannot set up TLS at all."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))
    with pytest.raises(ConfigError, match=r"CA certificates could not be read .*install ca-certificates"):
        CloudClient(config_for("https://127.0.0.1:9/v1"), api_key="test")

"""Azure OpenAI against a local server that answers as an Azure OpenAI deployment does."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.errors import RemoteServiceError, SettingsValidationError
from sidecar.inference.service import InferenceService

from .remote_fakes import Recorded, fake_provider

AZURE_429 = {
    "error": {
        "code": "429",
        "message": "Requests to the Embeddings_Create Operation under Azure OpenAI API version 2024-10-21 "
        "have exceeded call rate limit of your current pricing tier.",
    }
}


def azure_answer(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    if "/embeddings" in rec.path:
        data = [
            {"object": "embedding", "index": i, "embedding": [float(i), 0.25]}
            for i in range(len(rec.body["input"]))
        ]
        return 200, {"object": "list", "data": data, "model": "text-embedding-3-small"}, {}
    message = {"role": "assistant", "content": "hi from azure"}
    return (
        200,
        {"object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]},
        {},
    )


def settings(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "resource_name": "res",
        "deployment_id": "my-dep",
        "api_version": "2024-10-21",
        "url": url,
        **extra,
    }


async def test_embeddings_at_the_deployment_url_with_api_key_and_429_retry(remote: InferenceService) -> None:
    with fake_provider(azure_answer) as server:
        server.script.append((429, AZURE_429, {"retry-after": "0"}))
        remote.registry.create(
            "az",
            "text_embedding",
            {
                "service": "azureopenai",
                "service_settings": settings(server.url, api_key="az-key", dimensions=2),
                "task_settings": {"user": "u"},
            },
        )
        out = await remote.infer("az", ["a", "b"])
        assert [r.embedding for r in out.results] == [[0.0, 0.25], [1.0, 0.25]]
        assert len(server.requests) == 2
        sent = server.requests[-1]
        assert sent.path == "/openai/deployments/my-dep/embeddings?api-version=2024-10-21"
        assert sent.headers["api-key"] == "az-key" and "authorization" not in sent.headers
        assert sent.body == {"input": ["a", "b"], "dimensions": 2, "user": "u"}


async def test_completion_with_entra_id_token(remote: InferenceService) -> None:
    with fake_provider(azure_answer) as server:
        remote.registry.create(
            "az-chat",
            "completion",
            {"service": "azureopenai", "service_settings": settings(server.url, entra_id="entra-token")},
        )
        out = await remote.infer("az-chat", ["hello"])
        assert [r.result for r in out.results] == ["hi from azure"]
        sent = server.requests[0]
        assert sent.path == "/openai/deployments/my-dep/chat/completions?api-version=2024-10-21"
        assert sent.headers["authorization"] == "Bearer entra-token"
        assert sent.body == {"messages": [{"role": "user", "content": "hello"}], "n": 1}


async def test_persistent_429_surfaces_azures_message(remote: InferenceService) -> None:
    with fake_provider(lambda rec: (429, AZURE_429, {})) as server:
        remote.registry.create(
            "az",
            "text_embedding",
            {"service": "azureopenai", "service_settings": settings(server.url, api_key="k")},
        )
        with pytest.raises(RemoteServiceError) as err:
            await remote.infer("az", ["a"])
        assert err.value.status == 429 and err.value.retriable
        assert "have exceeded call rate limit" in err.value.reason


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {},
            "Validation Failed: 1: [secret_settings] must have either the [api_key] or the [entra_id] key set;",
        ),
        (
            {"api_key": "k", "entra_id": "e"},
            "Validation Failed: 1: [secret_settings] must have only one of the [api_key] or the [entra_id] key set;",
        ),
        (
            {"api_key": "k", "client_id": "c", "client_secret": "s", "tenant_id": "t"},
            "Validation Failed: 1: [secret_settings] must have only one of the [api_key], the [entra_id] or the "
            "OAuth2 client credentials ([client_id], [client_secret], [scopes], [tenant_id]) set;",
        ),
        (
            {"client_id": "c", "client_secret": "s"},
            "Validation Failed: 1: [service_settings] all Azure OpenAI OAuth2 fields must be provided together; "
            "missing: [scopes, tenant_id];",
        ),
        (
            {"client_id": "c", "client_secret": "s", "tenant_id": "t", "scopes": "one"},
            "Validation Failed: 1: [service_settings] [scopes] must be a non-empty list of strings;",
        ),
    ],
)
def test_exactly_one_credential(remote: InferenceService, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsValidationError) as err:
        remote.registry.create(
            "az",
            "text_embedding",
            {"service": "azureopenai", "service_settings": settings("http://x", **extra)},
        )
    assert err.value.reason == message


def test_required_settings_and_secrets_kept_apart(remote: InferenceService) -> None:
    with pytest.raises(SettingsValidationError) as err:
        remote.registry.create(
            "az",
            "completion",
            {"service": "azureopenai", "service_settings": {"api_key": "k", "api_version": "v"}},
        )
    assert err.value.reason.startswith(
        "Validation Failed: 1: [service_settings] does not contain the required setting [resource_name];"
    )
    endpoint = remote.registry.create(
        "az", "completion", {"service": "azureopenai", "service_settings": settings("http://x", entra_id="e")}
    )
    assert endpoint.secrets == {"entra_id": "e"}
    assert "entra_id" not in endpoint.public_dict()["service_settings"]


async def test_default_rate_limits_are_elasticsearchs(remote: InferenceService) -> None:
    """1440 requests a minute for embeddings, 120 for completions; `rate_limit` overrides them."""
    for inference_id, task, extra, per_minute in (
        ("az-e", "text_embedding", {}, 1440),
        ("az-c", "completion", {}, 120),
        ("az-r", "completion", {"rate_limit": {"requests_per_minute": 30}}, 30),
    ):
        endpoint = remote.registry.create(
            inference_id,
            task,
            {"service": "azureopenai", "service_settings": settings("http://x", api_key="k", **extra)},
        )
        runtime = remote._build_runtime(endpoint)
        assert runtime.caller.limiter.interval == pytest.approx(60 / per_minute)  # type: ignore[attr-defined]
        await runtime.aclose()


def entra(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    """Microsoft Entra ID's token endpoint (client credentials grant), then the deployment, which
    accepts only the token it issued."""
    if rec.path == "/tenant-1/oauth2/v2.0/token":
        if rec.body.get("client_secret") != "secret-1":
            return (
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
                {},
            )
        return 200, {"token_type": "Bearer", "expires_in": 3599, "access_token": "aad-token"}, {}
    if rec.headers.get("authorization") != "Bearer aad-token":
        return (
            401,
            {"error": {"code": "401", "message": "Access denied due to invalid subscription key."}},
            {},
        )
    return azure_answer(rec)


async def test_client_credentials_fetch_one_entra_token(
    remote: InferenceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sidecar.inference.services.azure_openai import AzureOpenAIRuntime

    with fake_provider(entra) as server:
        monkeypatch.setattr(AzureOpenAIRuntime, "login_host", server.url)
        credentials = {
            "client_id": "app-1",
            "client_secret": "secret-1",
            "tenant_id": "tenant-1",
            "scopes": ["https://cognitiveservices.azure.com/.default"],
        }
        endpoint = remote.registry.create(
            "az-oauth",
            "completion",
            {"service": "azureopenai", "service_settings": settings(server.url, **credentials)},
        )
        assert endpoint.secrets == {"client_secret": "secret-1"}
        assert "client_secret" not in endpoint.public_dict()["service_settings"]
        for _ in range(2):
            out = await remote.infer("az-oauth", ["hello"])
            assert [r.result for r in out.results] == ["hi from azure"]
        token_requests = [r for r in server.requests if r.path.endswith("/token")]
        assert len(token_requests) == 1  # reused until it nears expiry
        assert token_requests[0].body == {
            "grant_type": "client_credentials",
            "client_id": "app-1",
            "client_secret": "secret-1",
            "scope": "https://cognitiveservices.azure.com/.default",
        }

        wrong = {**credentials, "client_secret": "nope", "scopes": ["api://x/.default"]}
        remote.registry.create(
            "az-wrong",
            "completion",
            {"service": "azureopenai", "service_settings": settings(server.url, **wrong)},
        )
        with pytest.raises(RemoteServiceError) as err:
            await remote.infer("az-wrong", ["hello"])
        assert err.value.status == 401
        assert err.value.reason == (
            "Failed to generate a Bearer Token for inference entity id [az-wrong]: status [401]. "
            "Error message: [AADSTS7000215: Invalid client secret provided.]"
        )
        assert server.requests[-1].body["scope"] == "api://x/.default"

"""OpenAI embeddings and chat completions: the OpenAI-compatible runtime at OpenAI's own URLs.

Embeddings: `POST {url} {"input": [...], "model", "encoding_format": "float", "dimensions"?, "user"?}`
answered by `{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...]}], ...}`.
Completion and chat completion: see `sidecar.inference.services.openai_compatible`. `url`, when
set, replaces the default URL of the endpoint's task; `organization_id` is sent as
`OpenAI-Organization`. Auth: `api_key` as a bearer token, or OAuth 2.0 client credentials
(`client_id`, `client_secret`, `scopes`, `token_url`, all together): tokens from `token_url`
(form `grant_type=client_credentials&client_id&client_secret&scope`), reused until they near expiry.
"""

from __future__ import annotations

from typing import Any

from sidecar.inference.services.bearer_tokens import BearerTokens, check_scopes, client_credentials
from sidecar.inference.services.openai_compatible import OpenAICompatibleRuntime
from sidecar.inference.services.remote import RemoteCaller
from sidecar.inference.services.validation import Errors
from sidecar.inference.types import TaskType

# Elasticsearch's OAuth2 group (all or none; `client_secret` is the secret).
OAUTH2 = ("client_id", "client_secret", "scopes", "token_url")


class OpenAIRuntime(OpenAICompatibleRuntime):
    service = "openai"
    embeddings_url = "https://api.openai.com/v1/embeddings"
    chat_url = "https://api.openai.com/v1/chat/completions"

    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        super().__init__(inference_id, settings, secrets, caller)
        if secrets.get("client_secret"):
            form = client_credentials(settings, secrets)
            self.tokens = BearerTokens(
                str(settings["token_url"]), form, inference_id, caller.policy.timeout_s
            )
        if settings.get("organization_id"):
            self.headers["OpenAI-Organization"] = str(settings["organization_id"])

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        errors = Errors()
        oauth = [k for k in OAUTH2 if service_settings.get(k)]
        if oauth and service_settings.get("api_key"):
            errors.add(
                "[secret_settings] must have only one of the [api_key] or the OAuth2 settings "
                "([client_id], [client_secret], [scopes], [token_url]) set"
            )
        elif oauth and len(oauth) < len(OAUTH2):
            missing = ", ".join(k for k in OAUTH2 if k not in oauth)
            errors.add(
                f"[service_settings] all OpenAI OAuth2 fields must be provided together; missing: [{missing}]"
            )
        elif not oauth and not service_settings.get("api_key"):
            errors.add("[service_settings] does not contain the required setting [api_key]")
        check_scopes(service_settings, errors)
        errors.raise_any()
        super().check_settings(task_type, service_settings, task_settings)

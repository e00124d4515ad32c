"""Azure OpenAI: OpenAI's formats at a deployment's URL, keyed by `api-key` or an Entra ID token.

`POST https://{resource_name}.openai.azure.com/openai/deployments/{deployment_id}/{embeddings |
chat/completions}?api-version={api_version}`; the deployment fixes the model, so bodies carry none.
Auth (exactly one, as Elasticsearch requires): `api-key: <api_key>`, `Authorization: Bearer
<entra_id>`, or OAuth 2.0 client credentials (`client_id`, `client_secret`, `tenant_id`, `scopes`,
default `https://cognitiveservices.azure.com/.default`): a token from Microsoft Entra ID's
`POST https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token` (form `grant_type=
client_credentials&client_id&client_secret&scope`), reused until it nears expiry. `url` (a sidecar extension) replaces `https://{resource_name}.openai.azure.com`,
e.g. for a gateway in front of Azure or a test server.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from sidecar.inference.services.bearer_tokens import BearerTokens, check_scopes, client_credentials
from sidecar.inference.services.openai_compatible import OpenAICompatibleRuntime
from sidecar.inference.services.remote import RemoteCaller
from sidecar.inference.services.validation import Errors
from sidecar.inference.types import InputType, TaskType

# Elasticsearch's OAuth2 group (all or none; `client_secret` is the secret).
_CLIENT_CREDENTIALS = ("client_id", "client_secret", "scopes", "tenant_id")


class AzureOpenAIRuntime(OpenAICompatibleRuntime):
    service = "azureopenai"
    login_host: ClassVar[str] = "https://login.microsoftonline.com"

    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        super().__init__(inference_id, settings, {}, caller)
        base = str(settings.get("url") or f"https://{settings['resource_name']}.openai.azure.com").rstrip("/")
        deployment = f"{base}/openai/deployments/{quote(str(settings['deployment_id']), safe='')}"
        version = f"?api-version={quote(str(settings['api_version']), safe='')}"
        self.endpoints = {
            "embeddings": f"{deployment}/embeddings{version}",
            "chat": f"{deployment}/chat/completions{version}",
            "rerank": None,
        }
        if secrets.get("api_key"):
            self.headers = {"api-key": str(secrets["api_key"])}
        elif secrets.get("entra_id"):
            self.headers = {"Authorization": f"Bearer {secrets['entra_id']}"}
        else:
            form = client_credentials(settings, secrets)
            tenant = quote(str(settings["tenant_id"]), safe="")
            url = f"{self.login_host}/{tenant}/oauth2/v2.0/token"
            self.tokens = BearerTokens(url, form, inference_id, caller.policy.timeout_s)
            self.headers = {}

    @classmethod
    def check_task_settings(cls, task_settings: dict[str, Any], errors: Errors) -> None:
        return None

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        errors = Errors()
        has_key, has_entra = bool(service_settings.get("api_key")), bool(service_settings.get("entra_id"))
        oauth = [k for k in _CLIENT_CREDENTIALS if service_settings.get(k)]
        if oauth and (has_key or has_entra):
            errors.add(
                "[secret_settings] must have only one of the [api_key], the [entra_id] or the OAuth2 "
                "client credentials ([client_id], [client_secret], [scopes], [tenant_id]) set"
            )
        elif oauth and len(oauth) < len(_CLIENT_CREDENTIALS):
            missing = ", ".join(k for k in _CLIENT_CREDENTIALS if k not in oauth)
            errors.add(
                f"[service_settings] all Azure OpenAI OAuth2 fields must be provided together; missing: [{missing}]"
            )
        elif not oauth and not has_key and not has_entra:
            errors.add("[secret_settings] must have either the [api_key] or the [entra_id] key set")
        elif has_key and has_entra:
            errors.add("[secret_settings] must have only one of the [api_key] or the [entra_id] key set")
        check_scopes(service_settings, errors)
        errors.raise_any()
        super().check_settings(task_type, service_settings, task_settings)

    def embedding_body(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"input": texts}
        if self.settings.get("dimensions"):
            body["dimensions"] = self.settings["dimensions"]
        if task_settings.get("user"):
            body["user"] = task_settings["user"]
        return body

"""One typed settings object, read from `SIDECAR_*` environment variables (and an optional file).

Nothing is read at import time: call `load_settings` where the process starts. Every command's
`--config FILE` goes through it: a YAML mapping or `.env` lines (by extension, else by content),
with the precedence flags > environment > file > defaults.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from sidecar.errors import SettingsValidationError

# The `--config` file's source while `load_settings` builds a Settings (None: no file).
_file_source: ContextVar[PydanticBaseSettingsSource | None] = ContextVar(
    "sidecar_settings_file", default=None
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIDECAR_", env_file=None, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init arguments) > environment > the `--config` file, if any."""
        from_file = _file_source.get()
        return (init_settings, env_settings, *([from_file] if from_file else []), file_secret_settings)

    # HTTP API
    host: str = Field("127.0.0.1", description="Address `sidecar serve` binds.")
    port: int = Field(8080, description="Port `sidecar serve` binds.")
    api_keys: list[SecretStr] = Field(
        default_factory=list, description="Accepted API keys; empty disables authentication."
    )
    api_keys_file: Path | None = Field(None, description="File with one accepted API key per line.")
    max_body_bytes: int = Field(10 * 1024 * 1024, description="Largest request body accepted (413 above).")
    max_inputs_per_request: int = Field(512, description="Most `input` items in one inference request.")
    max_input_chars: int = Field(100_000, description="Most characters in one input string.")
    max_concurrent_requests: int = Field(
        512, description="Inference HTTP requests served at once; more are refused with 429."
    )
    shutdown_grace_s: int = Field(30, description="On SIGTERM, how long in-flight HTTP requests may finish.")
    http_header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A connection must send a request's headers within this time (else 408, closed).",
    )
    http_body_timeout_s: float = Field(
        60.0, gt=0, description="Longest a request may wait in all for its body to arrive (else 408)."
    )
    http_keep_alive_s: int = Field(
        15, gt=0, description="Idle keep-alive connections are closed after this time."
    )
    http_max_connections: int = Field(
        1000, gt=0, description="Open connections at most (lowered below the open-file limit); more get 503."
    )

    # Endpoint registry
    registry_path: Path = Field(Path(".sidecar/endpoints.sqlite3"), description="SQLite endpoint store.")
    registry_index: str | None = Field(
        None, description="Store endpoints in this index of the target engine instead (shared by replicas)."
    )
    registry_engine_url: str | None = Field(
        None,
        description=(
            "Engine URL for `registry_index` (OpenSearch or Elasticsearch; "
            "`https://user:password@host:port` for basic auth)."
        ),
    )
    registry_cache_s: float = Field(
        1.0, description="With `registry_index`: how long endpoints read from the index are reused."
    )

    # Inference engine
    device: str = Field("auto", description="`auto` (cuda when present), `cpu`, `cuda`, `cuda:N`.")
    max_batch_tokens: int | None = Field(None, description="Token budget per batch; default per device.")
    max_batch_requests: int | None = Field(None, description="Most texts per batch; default per device.")
    max_wait_ms: float = Field(2.0, description="Longest a text waits for others to join its batch.")
    max_queue: int = Field(4096, description="Texts waiting per model before 429 Overloaded.")
    max_seq_length: int = Field(512, description="Model input length in tokens; longer input is truncated.")
    torch_threads: int | None = Field(None, description="CPU threads for torch, OpenVINO; default = cores.")
    cpu_runtime: Literal["auto", "torch", "openvino"] = Field(
        "auto",
        description=(
            "Runtime of local models on CPU: `auto` (OpenVINO when installed and the model exports, "
            "else torch), `torch`, `openvino` (a model it cannot run fails to load). GPUs run torch."
        ),
    )
    openvino_cache_dir: Path | None = Field(
        None,
        description=(
            "Where exported OpenVINO graphs are kept; default `$XDG_CACHE_HOME/sparse-sidecar/openvino` "
            "(`~/.cache/...`), shared by every process of the user whatever its working directory."
        ),
    )
    warmup: bool = Field(True, description="Run a warm-up batch when a model loads.")
    model_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description=(
            "Directories (comma-separated) a local `model_id` path may name; other paths are refused. "
            "Packaged models, hub ids and the Hugging Face cache are always allowed."
        ),
    )
    model_aliases: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "JSON object: Elasticsearch built-in model id (`.elser_model_2`, `.multilingual-e5-small`, "
            "`.rerank-v1`, ...) or any alias -> local path, hub id or packaged model that serves it; "
            "replaces the embedded stand-ins."
        ),
    )
    probe_remote_on_create: bool = Field(
        True,
        description="PUT of a remote endpoint makes one test call to the provider (off: offline setups).",
    )
    preload_endpoints: list[str] = Field(
        default_factory=lambda: [".splade-tiny", ".minilm-l6"],
        description=(
            "Endpoints whose models `sidecar serve` loads before it reports ready (it listens "
            "meanwhile, readiness 503); `[]`: each model loads on its first request."
        ),
    )

    # Local stack (written by `make stack-up` into .devstack/env)
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    opensearch_url: str = Field("http://127.0.0.1:9200", description="OpenSearch URL.")
    es_url: str = Field("http://127.0.0.1:9201", description="Elasticsearch (or ES-wire) URL.")

    # Ingest hook (`sidecar.hook`): the API accepts Elasticsearch's bulk and document-write APIs
    hook_pipelines: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Pipeline files (comma-separated) whose `source.ingest_hook.indices` the hook enriches.",
    )
    hook_upstream_url: str | None = Field(
        None, description="Engine the hook forwards writes to; default: the hook pipelines' `sink.urls[0]`."
    )
    hook_max_document_bytes: int = Field(
        5 * 1024 * 1024, description="Largest document line in a bulk; larger ones get a per-item 413."
    )
    hook_window_docs: int = Field(256, description="Documents of one bulk enriched together.")
    hook_spool_memory_bytes: int = Field(
        8 * 1024 * 1024, description="Enriched bulks larger than this wait in a temporary file, not memory."
    )
    hook_upstream_timeout_s: float = Field(120.0, description="Timeout of one forwarded request.")

    @field_validator("hook_pipelines", "model_dirs", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    log_level: str = Field("INFO", description="Log level.")
    log_json: bool = Field(True, description="Structured JSON logs.")


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Settings from flags (`overrides`; None means "not given"), the environment, then `config_file`.

    Raises `SettingsValidationError` naming the file when it cannot be read or parsed, or holds a
    setting that does not exist.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    token = _file_source.set(config_source(config_file) if config_file is not None else None)
    try:
        return Settings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        origin = f" (flags, SIDECAR_* environment, {config_file})" if config_file else ""
        raise SettingsValidationError(f"invalid settings{origin}: {problems}") from None
    finally:
        _file_source.reset(token)


def config_source(path: Path) -> PydanticBaseSettingsSource:
    """The settings in a YAML mapping (keys `port` or `SIDECAR_PORT`) or `.env` file (`SIDECAR_PORT=`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsValidationError(f"cannot read the config file [{path}]: {exc}") from None
    if _is_yaml(path, text):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SettingsValidationError(f"config file [{path}] is not valid YAML: {exc}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise SettingsValidationError(f"config file [{path}] must hold a mapping of settings")
        values = {str(key).lower().removeprefix("sidecar_"): value for key, value in data.items()}
        _refuse_unknown(path, values)
        return InitSettingsSource(Settings, values)
    names = [str(key) for key in dotenv_values(path) if str(key).upper().startswith("SIDECAR_")]
    _refuse_unknown(path, {name.lower().removeprefix("sidecar_"): None for name in names})
    return DotEnvSettingsSource(Settings, env_file=path)


def _is_yaml(path: Path, text: str) -> bool:
    """By extension; otherwise a file whose YAML is a mapping (`.env` lines parse as plain text)."""
    if path.suffix in (".yaml", ".yml"):
        return True
    if path.suffix == ".env" or path.name.startswith(".env"):
        return False
    try:
        return isinstance(yaml.safe_load(text), dict)
    except yaml.YAMLError:
        return False


def _refuse_unknown(path: Path, values: dict[str, Any]) -> None:
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise SettingsValidationError(f"config file [{path}] has unknown settings {unknown}")

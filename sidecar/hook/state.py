"""The hook's long-lived parts, built once when the API starts: pipelines, selector, engine client."""

from __future__ import annotations

import logging

from sidecar import redact
from sidecar.enrichment import Enricher
from sidecar.errors import PipelineConfigError
from sidecar.hook.pipelines import HookPipeline, PipelineSelector
from sidecar.hook.upstream import Upstream
from sidecar.hook.window import WindowProcessor
from sidecar.inference.types import InferenceServiceProtocol
from sidecar.pipelines.loader import load_pipelines
from sidecar.pipelines.schema import PipelineConfig, SinkAuth
from sidecar.settings import Settings
from sidecar.sinks import create_sink

log = logging.getLogger(__name__)


def _upstream_target(settings: Settings, configs: list[PipelineConfig]) -> tuple[str | None, SinkAuth | None]:
    urls = {c.sink.urls[0].rstrip("/") for c in configs}
    if settings.hook_upstream_url is not None:
        url = settings.hook_upstream_url.rstrip("/")
        same = [c for c in configs if c.sink.urls[0].rstrip("/") == url]
        return url, same[0].sink.auth if same else None
    if len(urls) > 1:
        raise PipelineConfigError(
            "the ingest hook forwards to one engine, but the hook pipelines write to "
            f"{sorted(redact.url(u) for u in urls)}; set SIDECAR_HOOK_UPSTREAM_URL",
        )
    if not configs:
        return None, None
    return configs[0].sink.urls[0], configs[0].sink.auth


class Hook:
    def __init__(
        self,
        pipelines: list[HookPipeline],
        upstream: Upstream,
        settings: Settings,
    ) -> None:
        self.pipelines = pipelines
        self.selector = PipelineSelector(pipelines)
        self.processor = WindowProcessor(self.selector, settings.hook_max_document_bytes)
        self.upstream = upstream
        self.settings = settings

    @classmethod
    def build(
        cls, settings: Settings, service: InferenceServiceProtocol, *, auth_enabled: bool
    ) -> Hook | None:
        """The hook for these settings; None when neither pipelines nor an upstream engine are set."""
        configs = load_pipelines(settings.hook_pipelines) if settings.hook_pipelines else []
        for config in configs:
            if config.source.ingest_hook is None:
                raise PipelineConfigError(
                    f"pipeline [{config.name}] is listed in SIDECAR_HOOK_PIPELINES but has no "
                    "[source.ingest_hook]"
                )
        url, auth = _upstream_target(settings, configs)
        if url is None:
            return None
        pipelines = [
            HookPipeline(
                config,
                Enricher(
                    config.fields,
                    service,
                    pipeline=config.name,
                    max_inputs_per_request=min(256, settings.max_inputs_per_request),
                    max_input_chars=settings.max_input_chars,
                ),
                create_sink(config.sink, config.errors, pipeline=config.name),
            )
            for config in configs
        ]
        upstream = Upstream(
            url, auth=auth, timeout_s=settings.hook_upstream_timeout_s, pass_client_auth=not auth_enabled
        )
        for pipeline in pipelines:
            log.info("ingest hook: pipeline [%s] enriches %s", pipeline.name, pipeline.patterns)
        log.info("ingest hook forwards to [%s]", redact.url(url))
        return cls(pipelines, upstream, settings)

    async def close(self) -> None:
        await self.upstream.close()
        for pipeline in self.pipelines:
            await pipeline.sink.close()

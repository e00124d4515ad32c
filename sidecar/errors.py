"""One error tree for the whole project.

Every error carries the HTTP status and the Elasticsearch error `type` it maps to, and whether a
caller may retry it. `sidecar.api.es_errors` turns these into Elasticsearch error bodies; the
worker turns non-retriable ones into dead-letter records.
"""

from __future__ import annotations

from dataclasses import dataclass


class SidecarError(Exception):
    """Base of every error this project raises on purpose."""

    status: int = 500
    es_type: str = "exception"
    retriable: bool = False

    def __init__(self, reason: str, *, status: int | None = None, es_type: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status
        if es_type is not None:
            self.es_type = es_type


class NotFoundError(SidecarError):
    status = 404
    es_type = "resource_not_found_exception"


class AlreadyExistsError(SidecarError):
    status = 400
    es_type = "resource_already_exists_exception"


class RequestValidationError(SidecarError):
    """Bad request parameters (`action_request_validation_exception`)."""

    status = 400
    es_type = "action_request_validation_exception"


class SettingsValidationError(SidecarError):
    """Missing or invalid endpoint settings (`validation_exception`)."""

    status = 400
    es_type = "validation_exception"


class StatusError(SidecarError):
    """Elasticsearch's generic `status_exception`: unknown task type, unknown service, ..."""

    status = 400
    es_type = "status_exception"


class ParseError(SidecarError):
    """Malformed or unknown content in a request body (`x_content_parse_exception`)."""

    status = 400
    es_type = "x_content_parse_exception"


class MissingBodyError(SidecarError):
    status = 400
    es_type = "parse_exception"


class BodyTooLargeError(SidecarError):
    status = 413
    es_type = "request_entity_too_large_exception"


class OverloadedError(SidecarError):
    """A bounded queue is full; the API answers 429 and the worker pauses."""

    status = 429
    es_type = "es_rejected_execution_exception"
    retriable = True


class ModelNotReadyError(SidecarError):
    status = 409
    es_type = "status_exception"
    retriable = True


class InferenceFailedError(SidecarError):
    """The model or a remote service failed while serving a request."""

    status = 500
    es_type = "status_exception"


class RemoteServiceError(SidecarError):
    """A remote inference provider answered with an error."""

    status = 502
    es_type = "status_exception"

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retriable: bool = False,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(reason, status=status)
        self.retriable = retriable
        self.retry_after = retry_after  # the provider's `Retry-After`, which the backoff honours


class TimeoutError_(SidecarError):
    status = 408
    es_type = "elasticsearch_timeout_exception"
    retriable = True


class AuthenticationError(SidecarError):
    status = 401
    es_type = "security_exception"


class PipelineConfigError(SidecarError):
    """A pipeline file is invalid; `problems` lists each one with file, line and key."""

    status = 400
    es_type = "parse_exception"

    def __init__(self, reason: str, problems: list[str] | None = None) -> None:
        super().__init__(reason)
        self.problems = problems or []


class IllegalArgumentError(SidecarError):
    """Elasticsearch's `illegal_argument_exception`: an unknown query parameter or a bad parameter value."""

    status = 400
    es_type = "illegal_argument_exception"


class UpstreamUnavailableError(SidecarError):
    """The engine behind the ingest hook or a backfill did not answer (refused, reset, timed out)."""

    status = 502
    es_type = "connect_transport_exception"
    retriable = True


@dataclass(frozen=True)
class DocumentError:
    """Why one document cannot be written; `error_type` and `reason` go into the dead letter."""

    error_type: str
    reason: str


class RetriableInferenceError(Exception):
    """Inference failed for a reason that is not the documents' fault (overload, model not ready)."""

    def __init__(self, cause: SidecarError) -> None:
        super().__init__(cause.reason)
        self.cause = cause


class RoutingError(SidecarError):
    """No API serves this path and method; Elasticsearch answers `{"error": "<sentence>", "status": 400}`."""

    status = 400
    es_type = "illegal_argument_exception"
    short_form = True


class RequestTimeoutError(SidecarError):
    """A client too slow to send its request; the connection is closed after the answer."""

    status = 408
    es_type = "receive_timeout_transport_exception"

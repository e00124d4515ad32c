"""Routes an Elasticsearch cluster calls, so its `inference` processor and `semantic_text` fields can
use this project as their model server (see pipelines/elasticsearch/README.md).

- `POST /_sidecar/hugging_face/{id}`: Elasticsearch's `hugging_face` service (8.12+) sends
  `{"inputs": [...]}` with `Authorization: Bearer <api_key>` and reads `[{token: weight}]` (sparse)
  or `[[floats]]` (dense).
- `POST /_sidecar/custom/{id}`: the `custom` service (8.19 / 9.1+) with the documented request
  template `{"input": ${input}, "input_type": ${input_type}}`; sparse results come as lists of
  `{"token", "weight"}` so the service's `token_path` / `weight_path` can read them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from sidecar.api.bodies import CustomServiceRequest, HuggingFaceRequest, parse_model, read_json
from sidecar.api.deps import limiter_of, registry_of, resolve, service_of, settings_of
from sidecar.api.limits import check_inputs
from sidecar.api.openapi import ERROR_RESPONSES, operation
from sidecar.api.params import QueryOptions, query_options
from sidecar.api.rendering import es_json
from sidecar.api.results import custom_body, hugging_face_body
from sidecar.errors import RequestValidationError, StatusError
from sidecar.inference.types import InferenceOutput, InputType, TaskType

router = APIRouter(tags=["Elasticsearch cluster hooks"], responses=ERROR_RESPONSES)

Common = Annotated[QueryOptions, Depends(query_options())]
_EMBEDDING_TASKS = (TaskType.SPARSE_EMBEDDING, TaskType.TEXT_EMBEDDING)


async def _embed(
    request: Request,
    inference_id: str,
    texts: list[str],
    input_type: InputType | None = None,
    task_settings: dict[str, Any] | None = None,
) -> InferenceOutput:
    if not texts:
        raise RequestValidationError("Validation Failed: 1: Field [inputs] cannot be an empty array;")
    endpoint = await resolve(registry_of(request).get(inference_id, None))
    task_type = TaskType(endpoint.task_type)
    if task_type not in _EMBEDDING_TASKS:
        raise StatusError(
            f"Inference endpoint [{inference_id}] has task type [{task_type}]; this route serves "
            "sparse_embedding and text_embedding endpoints"
        )
    settings = settings_of(request)
    check_inputs(texts, max_inputs=settings.max_inputs_per_request, max_chars=settings.max_input_chars)
    async with limiter_of(request).slot():
        return await service_of(request).infer(
            inference_id, texts, task_type=task_type, input_type=input_type, task_settings=task_settings
        )


@router.post(
    "/_sidecar/hugging_face/{inference_id}",
    summary="Embed texts in the Hugging Face format Elasticsearch's `hugging_face` service reads",
    openapi_extra=operation(body=HuggingFaceRequest),
)
async def hugging_face(request: Request, inference_id: str, options: Common) -> Response:
    body = parse_model(HuggingFaceRequest, await read_json(request), "hugging_face_request")
    output = await _embed(request, inference_id, body.texts())
    return es_json(hugging_face_body(output), options)


@router.post(
    "/_sidecar/custom/{inference_id}",
    summary="Embed texts in the shape the documented `custom` service definition reads",
    openapi_extra=operation(body=CustomServiceRequest),
)
async def custom(request: Request, inference_id: str, options: Common) -> Response:
    body = parse_model(CustomServiceRequest, await read_json(request), "custom_service_request")
    input_type = InputType(body.input_type) if body.input_type else None
    output = await _embed(request, inference_id, body.texts(), input_type, body.task_settings)
    return es_json(custom_body(output), options)

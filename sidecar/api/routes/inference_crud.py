"""Managing inference endpoints: create, get, delete, update, and the list of services.

Routes with a static last segment (`_update`, `_all`, `_services`) are declared before the
wildcard ones, as Elasticsearch prefers static path segments.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from sidecar.api.bodies import EndpointConfig, read_object
from sidecar.api.catalog import service_configurations
from sidecar.api.deps import registry_of, resolve, service_of
from sidecar.api.openapi import ERROR_RESPONSES, operation
from sidecar.api.params import QueryOptions, parse_task_type, query_options
from sidecar.api.rendering import endpoint_warnings, es_json, warned
from sidecar.errors import NotFoundError, StatusError
from sidecar.inference.registry import creation_warnings
from sidecar.inference.types import TaskType

router = APIRouter(tags=["inference endpoints"], responses=ERROR_RESPONSES)

Common = Annotated[QueryOptions, Depends(query_options())]
WithTimeout = Annotated[QueryOptions, Depends(query_options("timeout"))]
DeleteOptions = Annotated[QueryOptions, Depends(query_options("dry_run", "force"))]

_ALL = ("_all", "*")


def _endpoints_body(endpoints: list[Any]) -> dict[str, Any]:
    return {"endpoints": [e.public_dict() for e in endpoints]}


# --- services ------------------------------------------------------------------------------------


async def _services(request: Request, task_type: TaskType | None, options: QueryOptions) -> Response:
    return es_json(service_configurations(task_type), options)


@router.get("/_inference/_services", summary="List inference services", openapi_extra=operation())
async def get_services(request: Request, options: Common) -> Response:
    return await _services(request, None, options)


@router.get(
    "/_inference/_services/{task_type}",
    summary="List inference services offering a task type",
    openapi_extra=operation(),
)
async def get_services_for_task(request: Request, task_type: str, options: Common) -> Response:
    return await _services(request, parse_task_type(task_type), options)


# --- region policy ------------------------------------------------------------------------------
# Elasticsearch's region policies restrict where the Elastic Inference Service runs models. This
# server has no such service, so no policy is ever configured: GET and DELETE answer as Elasticsearch
# does then, and PUT says why one cannot be set.


def _no_region_policy() -> NotFoundError:
    return NotFoundError("No region policy is configured for this deployment")


@router.get("/_inference/_region_policy", summary="Get the region policy", openapi_extra=operation())
async def get_region_policy(request: Request, options: Common) -> Response:
    raise _no_region_policy()


@router.delete("/_inference/_region_policy", summary="Delete the region policy", openapi_extra=operation())
async def delete_region_policy(request: Request, options: Common) -> Response:
    raise _no_region_policy()


@router.put("/_inference/_region_policy", summary="Set the region policy", openapi_extra=operation("force"))
async def put_region_policy(
    request: Request, options: Annotated[QueryOptions, Depends(query_options("force"))]
) -> Response:
    await read_object(request)
    raise StatusError(
        "Region policies restrict the Elastic Inference Service, which this server does not provide; "
        "no region policy can be set"
    )


# --- update --------------------------------------------------------------------------------------


async def _update(
    request: Request, task_type: TaskType | None, inference_id: str, options: QueryOptions
) -> Response:
    body = await read_object(request)
    registry = registry_of(request)
    probe = getattr(service_of(request), "probe", None)
    if probe is not None and hasattr(registry, "prepare_update"):
        # As Elasticsearch: a changed endpoint is validated (model loaded, provider called) first.
        updated = await resolve(registry.prepare_update(inference_id, task_type, body))
        current = await resolve(registry.get(inference_id))
        if updated.config_key() != current.config_key():
            await probe(updated)
    endpoint = await resolve(registry.update(inference_id, task_type, body))
    return warned(request, es_json(endpoint.public_dict(), options), endpoint_warnings(request, endpoint))


_UPDATE_DOC = operation("timeout", body=EndpointConfig)


async def update_endpoint(request: Request, inference_id: str, options: WithTimeout) -> Response:
    return await _update(request, None, inference_id, options)


async def update_typed_endpoint(
    request: Request, task_type: str, inference_id: str, options: WithTimeout
) -> Response:
    return await _update(request, parse_task_type(task_type), inference_id, options)


# PUT is the documented method; 8.17 clients sent POST. One route per method keeps operation ids unique.
for _method in ("PUT", "POST"):
    router.add_api_route(
        "/_inference/{inference_id}/_update",
        update_endpoint,
        methods=[_method],
        summary="Update an inference endpoint",
        openapi_extra=_UPDATE_DOC,
    )
    router.add_api_route(
        "/_inference/{task_type}/{inference_id}/_update",
        update_typed_endpoint,
        methods=[_method],
        summary="Update an inference endpoint of a task type",
        openapi_extra=_UPDATE_DOC,
    )


# --- get -----------------------------------------------------------------------------------------


async def _get(
    request: Request, task_type: TaskType | None, inference_id: str, options: QueryOptions
) -> Response:
    registry = registry_of(request)
    if inference_id in _ALL:
        endpoints = await resolve(registry.list(task_type))
    else:
        endpoint = await resolve(registry.get(inference_id, task_type, management=True))
        response = es_json(_endpoints_body([endpoint]), options)
        return warned(request, response, endpoint_warnings(request, endpoint))
    return es_json(_endpoints_body(endpoints), options)


@router.get("/_inference", summary="List all inference endpoints", openapi_extra=operation())
async def get_all(request: Request, options: Common) -> Response:
    return await _get(request, None, "_all", options)


@router.get("/_inference/", include_in_schema=False)  # Elasticsearch ignores the trailing slash
async def get_all_slash(request: Request, options: Common) -> Response:
    return await _get(request, None, "_all", options)


@router.get("/_inference/{inference_id}", summary="Get an inference endpoint", openapi_extra=operation())
async def get_endpoint(request: Request, inference_id: str, options: Common) -> Response:
    return await _get(request, None, inference_id, options)


@router.get(
    "/_inference/{task_type}/{inference_id}",
    summary="Get an inference endpoint of a task type (`_all` for every one)",
    openapi_extra=operation(),
)
async def get_typed_endpoint(
    request: Request, task_type: str, inference_id: str, options: Common
) -> Response:
    return await _get(request, parse_task_type(task_type), inference_id, options)


# --- create --------------------------------------------------------------------------------------


async def _create(
    request: Request, task_type: TaskType | None, inference_id: str, options: QueryOptions
) -> Response:
    body = await read_object(request)
    registry = registry_of(request)
    endpoint = await resolve(registry.prepare_create(inference_id, task_type, body))
    probe = getattr(service_of(request), "probe", None)
    if probe is not None:  # as Elasticsearch's checkModelConfig: refuse now what could never serve
        endpoint = await probe(endpoint)
    endpoint = await resolve(registry.insert(endpoint))
    warnings = [*creation_warnings(body), *endpoint_warnings(request, endpoint)]
    return warned(request, es_json(endpoint.public_dict(), options), warnings)


_CREATE_DOC = operation("timeout", body=EndpointConfig)


@router.put("/_inference/{inference_id}", summary="Create an inference endpoint", openapi_extra=_CREATE_DOC)
async def create_endpoint(request: Request, inference_id: str, options: WithTimeout) -> Response:
    return await _create(request, None, inference_id, options)


@router.put(
    "/_inference/{task_type}/{inference_id}",
    summary="Create an inference endpoint of a task type",
    openapi_extra=_CREATE_DOC,
)
async def create_typed_endpoint(
    request: Request, task_type: str, inference_id: str, options: WithTimeout
) -> Response:
    return await _create(request, parse_task_type(task_type), inference_id, options)


# --- delete --------------------------------------------------------------------------------------


async def _delete(
    request: Request, task_type: TaskType | None, inference_id: str, options: QueryOptions
) -> Response:
    result = await resolve(
        registry_of(request).delete(inference_id, task_type, dry_run=options.dry_run, force=options.force)
    )
    return es_json(result, options)


_DELETE_DOC = operation("dry_run", "force")


@router.delete(
    "/_inference/{inference_id}", summary="Delete an inference endpoint", openapi_extra=_DELETE_DOC
)
async def delete_endpoint(request: Request, inference_id: str, options: DeleteOptions) -> Response:
    return await _delete(request, None, inference_id, options)


@router.delete(
    "/_inference/{task_type}/{inference_id}",
    summary="Delete an inference endpoint of a task type",
    openapi_extra=_DELETE_DOC,
)
async def delete_typed_endpoint(
    request: Request, task_type: str, inference_id: str, options: DeleteOptions
) -> Response:
    return await _delete(request, parse_task_type(task_type), inference_id, options)

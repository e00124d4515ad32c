"""`GET /` and `HEAD /`: the cluster-info answer the official clients' `info()` and `ping()` use."""

from __future__ import annotations

import socket
import uuid
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from sidecar.api.media import DEFAULT_MAJOR, compat_major
from sidecar.api.openapi import operation
from sidecar.api.params import QueryOptions, query_options
from sidecar.api.rendering import es_json

router = APIRouter(tags=["cluster"])

# The Elasticsearch release whose inference API each compatibility major speaks.
ES_VERSION_FOR_MAJOR = {8: "8.19.0", 9: "9.4.0"}  # 9.4: the `embedding` task type
CLUSTER_NAME = "sparse-sidecar"


def _sidecar_version() -> str:
    try:
        return version("sparse-sidecar")
    except PackageNotFoundError:
        return "0.0.0"


def info_body(major: int) -> dict[str, Any]:
    name = socket.gethostname()
    es_version = ES_VERSION_FOR_MAJOR[major]
    return {
        "name": name,
        "cluster_name": CLUSTER_NAME,
        "cluster_uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{CLUSTER_NAME}.{name}")),
        "version": {
            "number": es_version,
            "build_flavor": "default",
            "build_type": "sidecar",
            "build_hash": "sparse-sidecar",
            "build_date": "1970-01-01T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": "none",
            "minimum_wire_compatibility_version": es_version,
            "minimum_index_compatibility_version": es_version,
        },
        "tagline": "You Know, for Search",
        "sidecar": {"version": _sidecar_version()},
    }


async def root(request: Request, options: Annotated[QueryOptions, Depends(query_options())]) -> Response:
    if request.method == "HEAD":
        return Response(status_code=200, media_type="application/json")
    major = compat_major(request.headers.get("accept"), "Accept") or DEFAULT_MAJOR
    return es_json(info_body(major), options)


# One route per method, so each gets its own OpenAPI operation id.
router.add_api_route("/", root, methods=["GET"], summary="Cluster information", openapi_extra=operation())
router.add_api_route("/", root, methods=["HEAD"], summary="Ping", openapi_extra=operation())

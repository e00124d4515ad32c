"""AWS Signature Version 4 for httpx requests (Amazon Bedrock, SageMaker runtime).

Written here rather than taken from a library: botocore pins python-dateutil below the version this
project uses, and httpx-auth's signer encodes path segments once, which AWS rejects for Bedrock model
ids such as `amazon.titan-embed-text-v2:0` (every service but S3 expects the already-encoded path
encoded again). Follows AWS's "Create a signed AWS API request" and is checked against its
published example. Each attempt is signed anew, so retries never carry an expired date.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

import httpx

ALGORITHM = "AWS4-HMAC-SHA256"
_UNRESERVED = "-_.~"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class SigV4(httpx.Auth):
    requires_request_body = True

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        region: str,
        service: str,
        *,
        session_token: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.service = service
        self.session_token = session_token
        self.clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request

    def sign(self, request: httpx.Request) -> None:
        amz_date = self.clock().strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        request.headers["x-amz-date"] = amz_date
        if self.session_token:
            request.headers["x-amz-security-token"] = self.session_token
        names = sorted(
            name
            for name in {k.lower() for k in request.headers}
            if name in ("host", "content-type") or name.startswith("x-amz-")
        )
        headers = "".join(f"{n}:{' '.join(request.headers[n].split())}\n" for n in names)
        signed = ";".join(names)
        raw_path = request.url.raw_path.decode("ascii").split("?", 1)[0] or "/"
        path = "/".join(quote(segment, safe=_UNRESERVED) for segment in raw_path.split("/"))
        pairs = sorted(parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True))
        query = "&".join(f"{quote(k, safe=_UNRESERVED)}={quote(v, safe=_UNRESERVED)}" for k, v in pairs)
        payload = hashlib.sha256(request.read()).hexdigest()
        canonical = "\n".join([request.method.upper(), path, query, headers, signed, payload])
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = f"AWS4{self.secret_key}".encode()
        for part in (day, self.region, self.service, "aws4_request"):
            key = _hmac(key, part)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        request.headers["Authorization"] = (
            f"{ALGORITHM} Credential={self.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )

"""ApiVersions (key 18), versions 0-4: the served range of every registered API, as Kafka 4.0 advertises it.

Each key's maximum is Kafka 4.0's (release.py; a key 4.0 does not have is not advertised). Every API
is advertised from version 0 (reference §0/§1.5: librdkafka < 2.11.1 and kafka-python
enable features only if the advertised range contains old versions) up to its highest served
version. An ApiVersions request of a version we do not serve is answered by the connection with a
v0 body carrying UNSUPPORTED_VERSION and our range for key 18 (KIP-511), so the client retries
lower. Leaves out: supported/finalized features (none: no transaction.version, no KIP-848).
"""

from __future__ import annotations

import datetime
import sys
from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i16

from ferrymq.gateway.kafka.apis import API_HANDLERS, api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.release import advertised_max

API_KEY = 18
NO_THROTTLE = datetime.timedelta(0)


def build_response(version: int, error: ErrorCode = ErrorCode.none) -> Any:
    """The ApiVersions response at ``version`` listing every registered API."""
    resp_type = API_HANDLERS[API_KEY].response_type(version)
    entry_type = sys.modules[resp_type.__module__].ApiVersion
    keys = tuple(
        entry_type(api_key=i16(key), min_version=i16(0), max_version=i16(top))
        for key, top in advertised().items()
    )
    if version == 0:
        return resp_type(error_code=error, api_keys=keys)
    return resp_type(error_code=error, api_keys=keys, throttle_time=NO_THROTTLE)


def advertised() -> dict[int, int]:
    """api key -> the maximum version advertised, for every served key of the release."""
    out = {}
    for spec in sorted(API_HANDLERS.values(), key=lambda s: s.api_key):
        top = advertised_max(spec.api_key, spec.max_version)
        if top is not None:
            out[spec.api_key] = top
    return out


def unsupported_response() -> Any:
    """The v0 body for an ApiVersions version we do not serve: error 35 and the key 18 range."""
    resp_type = API_HANDLERS[API_KEY].response_type(0)
    entry_type = sys.modules[resp_type.__module__].ApiVersion
    spec = API_HANDLERS[API_KEY]
    own = entry_type(api_key=i16(API_KEY), min_version=i16(0), max_version=i16(spec.max_version))
    return resp_type(error_code=ErrorCode.unsupported_version, api_keys=(own,))


@api(API_KEY, 0, 4)
async def handle(ctx: RequestContext, request: Any) -> Any:
    return build_response(ctx.api_version)

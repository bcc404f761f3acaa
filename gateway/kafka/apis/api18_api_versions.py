"""ApiVersions (key 18), versions 0-4: the served range of every registered API, as Kafka 4.0 advertises it.

Each key's maximum is Kafka 4.0's (release.py; a key 4.0 does not have is not advertised). Every API
is advertised from version 0 (reference §0/§1.5: librdkafka < 2.11.1 and kafka-python
enable features only if the advertised range contains old versions) up to its highest served
version. An ApiVersions request of a version we do not serve is answered by the connection with a
v0 body carrying UNSUPPORTED_VERSION and our range for key 18 (KIP-511), so the client retries
lower. Features (v3+): ``group.version`` finalized at 1 (KIP-848 consumer groups are served, as a
Kafka 4 broker says), supported 0-1 (v4 only: v3 omits features whose minimum is 0, as Kafka does).
Share groups (KIP-932, keys 76-79) are advertised as Kafka 4.2 does, from version 1, with
``share.version`` finalized at 1, while kafkaShareGroupsEnable is on (release.py).
Leaves out: transaction.version and the other features (their level 0 is what we serve).
"""

from __future__ import annotations

import datetime
import sys
from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i16, i64

from ferrymq.gateway.kafka.apis import API_HANDLERS, api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.release import SHARE_FEATURE, SHARE_GROUP_VERSIONS, advertised_max

API_KEY = 18
NO_THROTTLE = datetime.timedelta(0)


#: (name, min supported, max supported, finalized level) of the features this broker reports
FEATURES = (("group.version", 0, 1, 1),)
#: the epoch of the finalized features (they never change at run time)
FEATURES_EPOCH = 1


def _features(version: int, module: Any, share_groups: bool) -> dict[str, Any]:
    if version < 3:
        return {}
    features = (*FEATURES, SHARE_FEATURE) if share_groups else FEATURES
    supported = tuple(
        module.SupportedFeatureKey(name=n, min_version=i16(lo), max_version=i16(hi))
        for n, lo, hi, _ in features
        if version >= 4 or lo > 0
    )
    finalized = tuple(
        module.FinalizedFeatureKey(name=n, max_version_level=i16(level), min_version_level=i16(level))
        for n, _, _, level in features
        if level > 0
    )
    return {
        "supported_features": supported,
        "finalized_features_epoch": i64(FEATURES_EPOCH),
        "finalized_features": finalized,
    }


def build_response(version: int, error: ErrorCode = ErrorCode.none, share_groups: bool = True) -> Any:
    """The ApiVersions response at ``version`` listing every registered API (the share group keys and
    ``share.version`` only with ``share_groups``, as a Kafka 4.2 broker with the feature off)."""
    resp_type = API_HANDLERS[API_KEY].response_type(version)
    module = sys.modules[resp_type.__module__]
    entry_type = module.ApiVersion
    keys = tuple(
        entry_type(
            api_key=i16(key), min_version=i16(SHARE_GROUP_VERSIONS.get(key, (0, 0))[0]), max_version=i16(top)
        )
        for key, top in advertised().items()
        if share_groups or key not in SHARE_GROUP_VERSIONS
    )
    if version == 0:
        return resp_type(error_code=error, api_keys=keys)
    return resp_type(
        error_code=error, api_keys=keys, throttle_time=NO_THROTTLE, **_features(version, module, share_groups)
    )


def advertised() -> dict[int, int]:
    """api key -> the maximum version advertised, for every served key of the release."""
    out = {}
    for spec in sorted(API_HANDLERS.values(), key=lambda s: s.api_key):
        top = advertised_max(spec.api_key, spec.max_version)
        if spec.api_key in SHARE_GROUP_VERSIONS:
            top = min(spec.max_version, SHARE_GROUP_VERSIONS[spec.api_key][1])
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
    return build_response(ctx.api_version, share_groups=ctx.frontend.broker.config.kafka_share_groups_enable)

"""The registry of Kafka APIs this broker serves: one module per API key, named after it.

Each ``apiNN_<name>.py`` registers its handler with :func:`api`; this module imports every such
module in the package at the end, so a new API module only needs to exist. ApiVersions is built
from the registry: every API is advertised from version 0 (old librdkafka and kafka-python infer
features from "the range contains version X", reference §0/§1.5) up to the highest served version,
capped at the advertised Kafka release's (release.py; keys that release lacks are not advertised);
a request for a version outside [min_version, max_version] is not served (UNSUPPORTED_VERSION for
ApiVersions, a closed connection otherwise, as Apache Kafka does).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader

from ferrymq.gateway.kafka.context import Handler
from ferrymq.gateway.kafka.request_check import check_request


@dataclass(slots=True)
class ApiSpec:
    """One API key: the versions served and the handler for all of them."""

    api_key: int
    min_version: int
    max_version: int
    handler: Handler
    _readers: dict[int, Callable[[bytes, int], tuple[Any, int]]] = field(default_factory=dict)

    def serves(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version

    def request_type(self, version: int) -> type[Any]:
        return load_request_schema(self.api_key, version)

    def response_type(self, version: int) -> type[Any]:
        return load_response_schema(self.api_key, version)

    def flexible(self, version: int) -> bool:
        return bool(self.request_type(version).__flexible__)

    def reader(self, version: int) -> Callable[[bytes, int], tuple[Any, int]]:
        """kio's (native) reader of the request body at ``version``, cached, behind the length check
        that keeps a forged array length from aborting the process (request_check.py)."""
        r = self._readers.get(version)
        if r is None:
            r = self._readers[version] = _checked_reader(self.request_type(version))
        return r


def _checked_reader(request_type: type[Any]) -> Callable[[bytes, int], tuple[Any, int]]:
    read = entity_reader(request_type)

    def checked(frame: bytes, offset: int) -> tuple[Any, int]:
        check_request(request_type, frame, offset)
        return read(frame, offset)

    return checked


API_HANDLERS: dict[int, ApiSpec] = {}


def api(api_key: int, min_version: int, max_version: int) -> Callable[[Handler], Handler]:
    """Register the decorated handler for ``api_key`` at versions min..max."""

    def register(handler: Handler) -> Handler:
        # a version's schemas load on its first request (loading them all here took most of the
        # frontend's start-up); tests/test_frontend_imports.py checks each one loads
        API_HANDLERS[api_key] = ApiSpec(api_key, min_version, max_version, handler)
        return handler

    return register


def _load_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("api"):
            importlib.import_module(f"{__name__}.{info.name}")


_load_all()

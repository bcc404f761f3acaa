"""Schemathesis against a real server's /openapi.json: generated requests, valid and invalid,
for every operation; none may get a 500. Bounded to a few examples per operation and mode.

Driven through schemathesis' Python API (one hypothesis run per operation) rather than its
pytest plugin, whose lazy fixture loader does not work with pytest 9.
"""

from __future__ import annotations

import collections
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from ferrymq.cli.testing import FerryServer

EXAMPLES = 6


@pytest.mark.timeout(120)
def test_openapi_operations_never_answer_500(tmp_path: Path) -> None:
    with FerryServer(tmp_path / "srv") as srv:
        with httpx.Client(base_url=srv.admin_url) as h:  # something to find, past the 404s
            h.post("/api/topics", json={"name": "Fuzz", "queues": 2}).raise_for_status()
            h.post("/api/topics/Fuzz/messages", json={"body": "x", "keys": ["k"]}).raise_for_status()
        schema = schemathesis.openapi.from_url(f"{srv.admin_url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15
        tried: list[str] = []
        statuses: list[int] = []
        for op in operations:
            modes = [schemathesis.GenerationMode.POSITIVE]
            if op.method.upper() != "GET" or op.path_parameters or op.query:
                modes.append(schemathesis.GenerationMode.NEGATIVE)
            strategy = st.one_of(*(op.as_strategy(generation_mode=m) for m in modes))

            @given(case=strategy)
            @settings(
                max_examples=EXAMPLES * len(modes),
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                resp = case.call_and_validate(checks=[not_a_server_error])
                statuses.append(resp.status_code)

            check()
            tried.append(f"{op.method.upper()} {op.path}")
        assert srv.running
        assert "POST /api/topics" in tried and "GET /api/messages/{msg_id}" in tried
        assert "Traceback" not in srv.log_tail(5000)
        answered = collections.Counter(s // 100 for s in statuses)
        assert answered[2] > 0 and answered[4] > 0 and set(answered) <= {2, 4}, answered

"""GET /api/timeseries: the broker's recent rates, lag, disk use and replication lag, as the
console charts them (sampled in core/broker/timeseries.py; nothing here computes a number)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from ferrymq.core.broker.timeseries import METRICS
from ferrymq.gateway.admin.context import ERRORS, AdminContext, get_ctx
from ferrymq.gateway.admin.models import MAX_OFFSET, SeriesOut, TimeSeriesMetric, TimeSeriesOut

router = APIRouter(tags=["timeseries"])


@router.get(
    "/timeseries",
    response_model=TimeSeriesOut,
    responses=ERRORS,
    summary="One metric's series over the last hour (or timeSeriesRetention), optionally filtered by label",
)
async def timeseries(
    metric: TimeSeriesMetric = Query(description="which metric"),
    topic: str | None = Query(None, max_length=255),
    group: str | None = Query(None, max_length=255),
    queue: int | None = Query(None, ge=0),
    slave: str | None = Query(None, max_length=255),
    since: int = Query(0, ge=0, le=MAX_OFFSET, description="only samples from this time on (ms)"),
    ctx: AdminContext = Depends(get_ctx),
) -> TimeSeriesOut:
    service = ctx.broker.timeseries
    wanted = {"topic": topic, "group": group, "queue": None if queue is None else str(queue), "slave": slave}
    match = {k: v for k, v in wanted.items() if v is not None}
    times, series = service.ring.query(metric, match, since)
    return TimeSeriesOut(
        metric=metric,
        unit=METRICS[metric][0],
        interval_ms=service.interval_ms,
        capacity=service.ring.capacity,
        timestamps=times,
        series=[SeriesOut(labels=s.labels, values=s.values) for s in series],
    )

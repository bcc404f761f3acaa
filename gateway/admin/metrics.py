"""GET /metrics: Prometheus text format.

Everything is read at scrape time from the broker's counters, offset table and store, so the
message path pays nothing for metrics except the latency histogram's bisect (see
``core/broker/stats.py``). prometheus_client does the exposition format.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from ferrymq import __version__
from ferrymq.core.histogram import LATENCY_BUCKETS, LatencyHistogram
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.gateway.admin.context import AdminContext

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

router = APIRouter(tags=["metrics"])


def _code_name(protocol: str, code: int) -> str:
    if protocol == "remoting":
        try:
            return RequestCode(code).name
        except ValueError:
            return str(code)
    return str(code)


class BrokerCollector(Collector):
    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        b = self.ctx.broker
        stats = b.stats
        broker = b.config.broker_name
        info = GaugeMetricFamily("ferrymq_info", "ferrymq version and broker", labels=["version", "broker"])
        info.add_metric([__version__, broker], 1)
        yield info
        yield GaugeMetricFamily(
            "ferrymq_uptime_seconds",
            "seconds since the broker started",
            value=time.time() - b.boot_timestamp / 1000,
        )

        for name, table, what in (
            ("ferrymq_messages_in", stats.topic_in, 0),
            ("ferrymq_bytes_in", stats.topic_in, 1),
            ("ferrymq_messages_out", stats.topic_out, 0),
            ("ferrymq_bytes_out", stats.topic_out, 1),
        ):
            kind = "messages" if what == 0 else "bytes"
            way = "stored for" if name.endswith("_in") else "delivered from"
            c = CounterMetricFamily(name, f"{kind} {way} each topic", labels=["topic"])
            for topic, pair in sorted(table.items()):
                c.add_metric([topic], pair[what])
            yield c

        h = HistogramMetricFamily(
            "ferrymq_request_duration_seconds",
            "time from request to response, per protocol and request code (or Kafka API key)",
            labels=["protocol", "code", "name"],
        )
        for (protocol, code), hist in sorted(stats.latency.histograms.items()):
            h.add_metric([protocol, str(code), _code_name(protocol, code)], _buckets(hist), hist.total)
        yield h
        yield from listener_metrics(b)

        lag = GaugeMetricFamily(
            "ferrymq_consumer_group_lag", "messages not yet consumed, per group", labels=["group", "protocol"]
        )
        groups = self.ctx.groups
        for name in groups.names():
            state = groups.state(name)
            progress = groups.progress(name, groups.topics(name, state))
            lag.add_metric([name, state.protocol if state else "native"], sum(p.lag for p in progress))
        yield lag

        store = b.store
        yield GaugeMetricFamily(
            "ferrymq_store_disk_used_bytes", "bytes the store occupies on disk", value=self.ctx.last_disk_used
        )
        try:
            usage = shutil.disk_usage(store.root)
            yield GaugeMetricFamily(
                "ferrymq_store_disk_total_bytes", "size of the store's file system", value=usage.total
            )
            yield GaugeMetricFamily(
                "ferrymq_store_disk_free_bytes", "free space on the store's file system", value=usage.free
            )
        except OSError:
            pass
        yield GaugeMetricFamily(
            "ferrymq_commitlog_bytes",
            "bytes of the commit log retained",
            value=store.commit_log_bytes,
        )
        flush = HistogramMetricFamily(
            "ferrymq_store_flush_duration_seconds", "time each commit-log sync (fdatasync) took"
        )
        flush.add_metric([], _buckets(store.flush_latency), store.flush_latency.total)
        yield flush
        yield CounterMetricFamily(
            "ferrymq_store_fsync_errors",
            "syncs of store files that failed (the first poisons the store: writes refused until restart)",
            value=store.sync_errors,
        )
        yield from replication_metrics(b)


def _buckets(hist: LatencyHistogram) -> list[tuple[str, float]]:
    """Cumulative buckets as the exposition format wants them."""
    running = 0
    out = []
    for bound, n in zip((*LATENCY_BUCKETS, float("inf")), hist.counts, strict=True):
        running += n
        out.append(("+Inf" if bound == float("inf") else repr(bound), running))
    return out


def listener_metrics(b: Broker) -> Iterator[Metric]:
    """Connections and refusals per listener, requests parked (core/broker/listeners.py)."""
    conns = GaugeMetricFamily(
        "ferrymq_listener_connections", "connections open now, per listener", labels=["listener"]
    )
    rejected = CounterMetricFamily(
        "ferrymq_rejected_requests",
        "connections or requests refused (or, for in_flight_cap, held back) per listener and reason",
        labels=["listener", "reason"],
    )
    for name, listener in sorted(b.listeners.items()):
        conns.add_metric([name], listener.open)
        for reason, n in sorted(listener.rejected.items()):
            rejected.add_metric([name, reason], n)
    yield conns
    yield rejected
    parked = GaugeMetricFamily(
        "ferrymq_parked_requests",
        "requests waiting for messages now: long-polling pulls, Kafka fetches below min_bytes",
        labels=["kind"],
    )
    for kind, count in sorted(b.parked.items()):
        parked.add_metric([kind], count())
    yield parked


def replication_metrics(b: Broker) -> Iterator[Metric]:
    """The group's replication as this broker sees it: per slave on a master, the link on a slave."""
    ha = b.ha
    end = b.store.commit_log.write_offset
    if b.controller is not None:
        yield GaugeMetricFamily(
            "ferrymq_replication_master_epoch",
            "controller mode: the master epoch this broker acts on (one more at each election)",
            value=b.controller.epoch,
        )
        changes = CounterMetricFamily(
            "ferrymq_replication_role_changes",
            "controller mode: roles taken after the first one (failovers), by the role taken",
            labels=["role"],
        )
        for role, n in sorted(b.controller.role_changes.items()):
            changes.add_metric([role], n)
        yield changes
    if ha.is_slave:
        yield GaugeMetricFamily(
            "ferrymq_replication_master_connected",
            "1 while this slave's HA link to its master is up",
            value=1 if ha.master_connected else 0,
        )
        return
    yield GaugeMetricFamily(
        "ferrymq_replication_in_sync_replicas",
        "the master and its in-sync slaves (Kafka's ISR size; what acks=all waits for)",
        value=1 + ha.in_sync_count(),
    )
    lag = GaugeMetricFamily(
        "ferrymq_replication_lag_bytes",
        "commit-log bytes the master holds that a slave has not acknowledged",
        labels=["slave"],
    )
    lag_msgs = GaugeMetricFamily(
        "ferrymq_replication_lag_messages",
        "messages (consume-queue entries) the master holds that a slave has not acknowledged",
        labels=["slave"],
    )
    in_sync = GaugeMetricFamily(
        "ferrymq_replication_slave_in_sync", "1 while a slave is in sync", labels=["slave"]
    )
    for r in ha.replicas():
        lag.add_metric([r.addr], max(0, end - r.ack_offset))
        lag_msgs.add_metric([r.addr], b.store.messages_after(r.ack_offset) if r.ack_offset < end else 0)
        in_sync.add_metric([r.addr], 1 if r.in_sync else 0)
    yield lag
    yield lag_msgs
    yield in_sync


def registry_for(ctx: AdminContext) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BrokerCollector(ctx))
    return registry


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics",
)
async def metrics(request: Request) -> Response:
    await request.app.state.ctx.disk_used()
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

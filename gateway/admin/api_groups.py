"""Consumer groups (native and Kafka): list, progress and lag, reset offsets.

A reset writes committed offsets into the broker's offset table. It is refused (409) while the
group has live members, unless forced: then the new offsets are also pushed to the group's live
native consumers (RESET_CONSUMER_CLIENT_OFFSET, core/broker/offset_reset.py), which move there
instead of overwriting the reset with their next commit. Live Kafka members get no push (the
Kafka protocol has none): stop them first.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request

from ferrymq.core.broker.group_views import GroupView
from ferrymq.core.broker.offset_reset import apply_reset
from ferrymq.gateway.admin.context import ERRORS, AdminContext, conflict, get_ctx, not_found, peer_of
from ferrymq.gateway.admin.models import (
    GroupDetailOut,
    GroupOut,
    MemberOut,
    OffsetChangeOut,
    QueueProgressOut,
    ResetOffset,
    ResetOffsetOut,
    SubscriptionOut,
)

router = APIRouter(tags=["groups"])
log = logging.getLogger("ferrymq.admin")


def _summary(ctx: AdminContext, name: str, state: GroupView | None) -> GroupOut:
    topics = ctx.groups.topics(name, state)
    return GroupOut(
        name=name,
        protocol="kafka" if state is not None and state.protocol == "kafka" else "native",
        state=state.state if state is not None else "Offline",
        member_count=len(state.members) if state is not None else 0,
        topics=topics,
        total_lag=sum(p.lag for p in ctx.groups.progress(name, topics)),
    )


def _state_or_404(ctx: AdminContext, group: str) -> GroupView | None:
    state = ctx.groups.state(group)
    if state is None and group not in ctx.broker.offsets.groups():
        raise not_found(f"group {group!r} not found")
    return state


@router.get("/groups", response_model=list[GroupOut], summary="Every consumer group, with total lag")
async def list_groups(ctx: AdminContext = Depends(get_ctx)) -> list[GroupOut]:
    return [_summary(ctx, name, ctx.groups.state(name)) for name in ctx.groups.names()]


@router.get(
    "/groups/{group}",
    response_model=GroupDetailOut,
    responses=ERRORS,
    summary="Members, subscriptions, and per-queue committed offset and lag",
)
async def get_group(group: str, ctx: AdminContext = Depends(get_ctx)) -> GroupDetailOut:
    state = _state_or_404(ctx, group)
    base = _summary(ctx, group, state)
    members = state.members if state else []
    # members subscribing differently lose messages silently in RocketMQ: say so
    views = {tuple(sorted(m.subscriptions.items())) for m in members if m.subscriptions}
    return GroupDetailOut(
        **base.model_dump(),
        members=[
            MemberOut(
                client_id=m.client_id,
                address=m.address,
                client=m.client,
                version=m.version,
                last_seen_ms_ago=m.last_seen_ms_ago,
                subscriptions=m.subscriptions,
            )
            for m in members
        ],
        consistent_subscriptions=len(views) <= 1,
        subscriptions=[
            SubscriptionOut(topic=t, expression=e) for t, e in (state.subscriptions.items() if state else [])
        ],
        queues=[
            QueueProgressOut(
                topic=p.topic,
                queue_id=p.queue_id,
                broker_offset=p.broker_offset,
                committed_offset=p.committed_offset,
                lag=p.lag,
                last_store_time=p.last_store_time,
            )
            for p in ctx.groups.progress(group, base.topics)
        ],
    )


@router.post(
    "/groups/{group}/reset-offset",
    response_model=ResetOffsetOut,
    responses=ERRORS,
    summary="Move committed offsets to the earliest, the latest, or a point in time",
)
async def reset_offset(
    group: str, body: ResetOffset, request: Request, ctx: AdminContext = Depends(get_ctx)
) -> ResetOffsetOut:
    state = _state_or_404(ctx, group)
    if state is not None and state.members and not body.force:
        raise conflict(
            f"group {group!r} has {len(state.members)} live member(s); stop them or pass force=true"
        )
    if body.topic is not None:
        ctx.topic(body.topic)
        topics = [body.topic]
    else:
        topics = ctx.groups.topics(group, state)
    store = ctx.broker.store
    changes: list[OffsetChangeOut] = []
    per_topic: dict[str, dict[int, int]] = {}
    for p in ctx.groups.progress(group, topics):
        if body.to == "earliest":
            new = store.min_offset(p.topic, p.queue_id)
        elif body.to == "latest":
            new = p.broker_offset
        else:
            new = store.offset_by_time(p.topic, p.queue_id, body.to)
        per_topic.setdefault(p.topic, {})[p.queue_id] = new
        changes.append(OffsetChangeOut(topic=p.topic, queue_id=p.queue_id, old=p.committed_offset, new=new))
    stamp = body.to if isinstance(body.to, int) else (0 if body.to == "earliest" else -1)
    for topic, offsets in per_topic.items():
        apply_reset(ctx.broker, group, topic, offsets, stamp)  # commits, and tells live native members
    log.info(
        "admin %s reset offsets of group %s to %s (%d queues)", peer_of(request), group, body.to, len(changes)
    )
    return ResetOffsetOut(group=group, offsets=changes)

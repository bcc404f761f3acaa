"""Topics: list, create, view (route and per-queue offsets), update, delete.

Create, update and delete run through the broker's own UPDATE_AND_CREATE_TOPIC and
DELETE_TOPIC_IN_BROKER processors, so the checks are the ones mqadmin gets; a delete also
removes the topic from the name servers, as ``mqadmin deleteTopic`` does.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from ferrymq.core.broker.topic_config import validate_topic
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import PERM_READ, PERM_WRITE, TopicConfig, TopicRouteData
from ferrymq.gateway.admin.broker_calls import call_broker
from ferrymq.gateway.admin.context import (
    ERRORS,
    AdminContext,
    conflict,
    get_ctx,
    peer_of,
    unprocessable,
)
from ferrymq.gateway.admin.models import (
    BrokerDataOut,
    QueueDataOut,
    QueueOut,
    RouteOut,
    TopicCreate,
    TopicDetailOut,
    TopicKind,
    TopicOut,
    TopicUpdate,
)

router = APIRouter(tags=["topics"])


def perm_text(perm: int) -> str:
    return ("R" if perm & PERM_READ else "") + ("W" if perm & PERM_WRITE else "") or "-"


def queue_ids(tc: TopicConfig) -> range:
    return range(max(tc.read_queue_nums, tc.write_queue_nums))


def queues_of(ctx: AdminContext, tc: TopicConfig) -> list[QueueOut]:
    store = ctx.broker.store
    out = []
    for qid in queue_ids(tc):
        lo, hi = store.min_offset(tc.topic_name, qid), store.max_offset(tc.topic_name, qid)
        last = store.queue_store_timestamp(tc.topic_name, qid, hi - 1) if hi > lo else None
        out.append(
            QueueOut(queue_id=qid, min_offset=lo, max_offset=hi, messages=hi - lo, last_store_time=last)
        )
    return out


def summary(ctx: AdminContext, tc: TopicConfig) -> TopicOut:
    store = ctx.broker.store
    name = tc.topic_name
    messages = sum(store.max_offset(name, q) - store.min_offset(name, q) for q in queue_ids(tc))
    return TopicOut(
        name=name,
        kind=ctx.topic_kind(name),
        read_queues=tc.read_queue_nums,
        write_queues=tc.write_queue_nums,
        perm=tc.perm,
        perm_text=perm_text(tc.perm),
        order=tc.order,
        messages=messages,
    )


def route_out(route: TopicRouteData | None) -> RouteOut | None:
    if route is None:
        return None
    return RouteOut(
        queue_datas=[
            QueueDataOut(
                broker_name=q.broker_name,
                read_queues=q.read_queue_nums,
                write_queues=q.write_queue_nums,
                perm=q.perm,
            )
            for q in route.queue_datas
        ],
        broker_datas=[
            BrokerDataOut(
                cluster=b.cluster,
                broker_name=b.broker_name,
                addrs={str(i): a for i, a in sorted(b.broker_addrs.items())},
            )
            for b in route.broker_datas
        ],
    )


async def detail(ctx: AdminContext, tc: TopicConfig) -> TopicDetailOut:
    route = await ctx.routes.topic_route(tc.topic_name)
    return TopicDetailOut(**summary(ctx, tc).model_dump(), route=route_out(route), queues=queues_of(ctx, tc))


async def _apply(ctx: AdminContext, tc: TopicConfig, peer: str) -> None:
    cmd = RemotingCommand(
        code=RequestCode.UPDATE_AND_CREATE_TOPIC,
        ext_fields={
            "topic": tc.topic_name,
            "readQueueNums": str(tc.read_queue_nums),
            "writeQueueNums": str(tc.write_queue_nums),
            "perm": str(tc.perm),
            "topicFilterType": tc.topic_filter_type,
            "topicSysFlag": str(tc.topic_sys_flag),
            "order": str(tc.order).lower(),
        },
    )
    resp = await call_broker(ctx.broker, cmd, peer)
    if resp.code != ResponseCode.SUCCESS:
        raise unprocessable(resp.remark or f"refused with code {resp.code}")


@router.get("/topics", response_model=list[TopicOut], summary="All topics of this broker")
async def list_topics(kind: TopicKind | None = None, ctx: AdminContext = Depends(get_ctx)) -> list[TopicOut]:
    out = [summary(ctx, tc) for _, tc in sorted(ctx.broker.topics.topics.items())]
    return [t for t in out if kind is None or t.kind == kind]


@router.post(
    "/topics", response_model=TopicDetailOut, status_code=201, responses=ERRORS, summary="Create a topic"
)
async def create_topic(
    body: TopicCreate, request: Request, ctx: AdminContext = Depends(get_ctx)
) -> TopicDetailOut:
    reason = validate_topic(body.name)
    if reason:
        raise unprocessable(reason)
    if ctx.broker.topics.get(body.name) is not None:
        raise conflict(f"topic {body.name!r} already exists")
    tc = TopicConfig(
        body.name,
        body.read_queues or body.queues,
        body.write_queues or body.queues,
        body.perm,
        order=body.order,
    )
    await _apply(ctx, tc, peer_of(request))
    return await detail(ctx, ctx.topic(body.name))


@router.get("/topics/{topic}", response_model=TopicDetailOut, responses=ERRORS, summary="Route and queues")
async def get_topic(topic: str, ctx: AdminContext = Depends(get_ctx)) -> TopicDetailOut:
    return await detail(ctx, ctx.topic(topic))


@router.patch(
    "/topics/{topic}", response_model=TopicDetailOut, responses=ERRORS, summary="Change queues or perm"
)
async def update_topic(
    topic: str, body: TopicUpdate, request: Request, ctx: AdminContext = Depends(get_ctx)
) -> TopicDetailOut:
    old = ctx.topic(topic)
    tc = TopicConfig(
        topic,
        body.read_queues or body.queues or old.read_queue_nums,
        body.write_queues or body.queues or old.write_queue_nums,
        body.perm if body.perm is not None else old.perm,
        old.topic_filter_type,
        old.topic_sys_flag,
        body.order if body.order is not None else old.order,
        dict(old.attributes),
    )
    await _apply(ctx, tc, peer_of(request))
    return await detail(ctx, ctx.topic(topic))


@router.delete("/topics/{topic}", status_code=204, responses=ERRORS, summary="Delete a topic")
async def delete_topic(topic: str, request: Request, ctx: AdminContext = Depends(get_ctx)) -> Response:
    ctx.topic(topic)
    if ctx.topic_kind(topic) == "system":
        raise conflict(f"{topic!r} is a system topic")
    cmd = RemotingCommand(code=RequestCode.DELETE_TOPIC_IN_BROKER, ext_fields={"topic": topic})
    resp = await call_broker(ctx.broker, cmd, peer_of(request))
    if resp.code != ResponseCode.SUCCESS:
        raise unprocessable(resp.remark or f"refused with code {resp.code}")
    # Name servers delete per cluster: only do it when no other broker group hosts the topic.
    route = await ctx.routes.topic_route(topic)
    me = ctx.broker.config.broker_name
    if route is None or all(q.broker_name == me for q in route.queue_datas):
        await ctx.routes.delete_topic(topic, ctx.broker.config.broker_cluster_name)
    return Response(status_code=204)

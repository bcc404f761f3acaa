"""TxnOffsetCommit (key 28), versions 0-5 (v5 is v4 on the wire, the TV2 signal): a group's
offsets, pending until the transaction ends.

Served by the group's coordinator (NOT_COORDINATOR elsewhere). The offsets are held per group and
producer id by the transaction coordinator (txn/coordinator.py, on disk before the reply): applied
to the group's committed offsets when the transaction commits, dropped when it aborts; meanwhile
OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT for those partitions. An older
epoch than the transaction's is INVALID_PRODUCER_EPOCH (as Kafka's offsets-log append answers), a
transaction that does not hold the group (no AddOffsetsToTxn) INVALID_TXN_STATE, an unknown
transactional id INVALID_PRODUCER_ID_MAPPING: offsets are never held that no transaction settles.
v3+ members are checked against the group as OffsetCommit checks them (KIP-447); a request
without member and generation is not. With several broker groups, a group coordinator that does
not coordinate the transactional id forwards the request, once checked, to the broker that does
(txn/peer.py), which holds the pending offsets and applies them to the partitions' owners when the
transaction commits; OffsetFetch's require_stable sees only the pending offsets held by the broker
it asks.
With an authorizer, WRITE on the transactional id and READ on the group (TRANSACTIONAL_ID_ or
GROUP_AUTHORIZATION_FAILED on every partition); a forwarded request is checked again where it lands, and
counts as forwarded only from a principal with CLUSTER_ACTION (the inter-broker one, inter_broker.py).
Leaves out: v5 (transaction version 2: the group added implicitly); the committed leader epoch.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.group.coordinator import OFFSET_METADATA_MAX_SIZE
from ferrymq.gateway.kafka.responses import partition_errors
from ferrymq.gateway.kafka.txn import peer
from ferrymq.gateway.kafka.txn.state import TxnState


async def _check_group(ctx: RequestContext, request: Any) -> ErrorCode | None:
    """The group's error for the whole request (checked where the group is coordinated), or None."""
    group = ctx.frontend.coordinator
    if not authz.transactional_id(ctx, Operation.WRITE, request.transactional_id):
        return ErrorCode.transactional_id_authorization_failed
    if not authz.group(ctx, Operation.READ, request.group_id):
        return ErrorCode.group_authorization_failed
    if not request.group_id:
        return ErrorCode.invalid_group_id
    forwarded = _forwarded(ctx)
    if not forwarded and not await group.serves(request.group_id):
        return ErrorCode.not_coordinator
    member = getattr(request, "member_id", "")
    generation = getattr(request, "generation_id", -1)
    if (member or generation >= 0) and not forwarded:
        return group.check_committer(
            request.group_id,
            member,
            getattr(request, "group_instance_id", None),
            generation,
            ctx.api_version,
            ctx.conn.peer,
            "TxnOffsetCommit",
        )
    return None


def _forwarded(ctx: RequestContext) -> bool:
    """A request another broker forwarded (its group checks made there): the forwarding client id from a
    principal with CLUSTER_ACTION (the inter-broker one), so a client cannot skip the checks by naming it."""
    return ctx.conn.client_id == peer.FORWARD_CLIENT_ID and authz.cluster(ctx, Operation.CLUSTER_ACTION)


def _check_producer(ctx: RequestContext, request: Any) -> ErrorCode | None:
    """The producer's error (checked by the transactional id's coordinator), or None: offsets are
    taken only into an Ongoing transaction that holds the group, so they are always settled."""
    meta = ctx.frontend.txn_coordinator.producer_of(request.transactional_id)
    if meta is None or meta.producer_id != request.producer_id:
        return ErrorCode.invalid_producer_id_mapping
    if meta.producer_epoch != request.producer_epoch:
        return ErrorCode.invalid_producer_epoch
    if meta.state is not TxnState.ONGOING or request.group_id not in meta.groups:
        return ErrorCode.invalid_txn_state
    return None


@api(28, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> Any:
    error = await _check_group(ctx, request)
    txn = ctx.frontend.txn_coordinator
    if error is None and not await txn.serves(request.transactional_id):
        if _forwarded(ctx):  # forwarded here, but not ours (any more)
            return _answer(request, ErrorCode.not_coordinator)
        # checked against the group here; the transaction's coordinator holds the offsets
        node = await ctx.frontend.cluster.coordinator_of(request.transactional_id)
        answer = await peer.call(node, request, ctx.frontend.inter_broker, peer.FORWARD_CLIENT_ID)
        return answer if answer is not None else _answer(request, ErrorCode.coordinator_not_available)
    if error is None:
        error = _check_producer(ctx, request)
    cluster = ctx.frontend.cluster
    if error is None:
        await cluster.placements(
            {t.name: max((p.partition_index for p in t.partitions), default=-1) for t in request.topics}
        )
    results: list[tuple[str, list[tuple[int, ErrorCode]]]] = []
    pending: list[tuple[str, int, int, str]] = []
    for t in request.topics:
        parts = []
        for p in t.partitions:
            meta = p.committed_metadata or ""
            if error is not None:
                parts.append((p.partition_index, error))
            elif not 0 <= p.partition_index < cluster.partition_count(t.name):
                parts.append((p.partition_index, ErrorCode.unknown_topic_or_partition))
            elif len(meta) > OFFSET_METADATA_MAX_SIZE:
                parts.append((p.partition_index, ErrorCode.offset_metadata_too_large))
            else:
                pending.append((t.name, p.partition_index, p.committed_offset, meta))
                parts.append((p.partition_index, ErrorCode.none))
        results.append((t.name, parts))
    if pending:
        failed = await txn.add_pending_offsets(request.group_id, request.producer_id, pending)
        if failed != ErrorCode.none:  # not on disk: retriable, as for every partition taken
            results = [
                (t, [(p, failed if e == ErrorCode.none else e) for p, e in parts]) for t, parts in results
            ]
    return partition_errors(request, results)


def _answer(request: Any, error: ErrorCode) -> Any:
    """``error`` on every partition of the request."""
    return partition_errors(
        request, [(t.name, [(p.partition_index, error) for p in t.partitions]) for t in request.topics]
    )

"""END_TRANSACTION (37): a producer's commit or rollback of a half message.

Serves the 4.x and 5.x header (``EndTransactionRequestHeader``): the half message is found by
``commitLogOffset`` and must carry the request's ``producerGroup`` and ``tranStateTableOffset``
(SYSTEM_ERROR otherwise, as ``EndTransactionProcessor`` answers); ``commitOrRollback`` 8
commits, 12 rolls back, 0 waits for a check; anything else is refused. Java sends it oneway, so a
refusal is logged with the peer and answered only to a request that asked for an answer; a
slave answers SLAVE_NOT_AVAILABLE. A producer's own END (``fromTransactionCheck`` false) after
the half's CHECK_IMMUNITY_TIME_IN_SECONDS (at least transactionTimeOut) is ILLEGAL_OPERATION
(604) and decides nothing: the check's answer will. The work is in ``core/broker/transaction.py``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ferrymq.core.broker.transaction import EndRefused, end_too_late
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, req_int, req_str
from ferrymq.core.remoting.message import SYSFLAG_TRANSACTION_COMMIT, SYSFLAG_TRANSACTION_ROLLBACK
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection
from ferrymq.core.store import PutStatus

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.transaction")


class EndTransactionProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def end(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            self._end(cmd)
        except BadRequest as exc:
            log.warning(
                "END_TRANSACTION from %s refused: %s (%s)",
                conn.peer,
                exc.remark,
                cmd.ext_fields,
                extra={"peer": conn.peer, "code": cmd.code, "group": cmd.ext_fields.get("producerGroup")},
            )
            return exc.response(cmd)
        return cmd.response(ResponseCode.SUCCESS)  # the transport drops it for a oneway request

    def _end(self, cmd: RemotingCommand) -> None:
        ext = cmd.ext_fields
        group = req_str(ext, "producerGroup")
        queue_offset = req_int(ext, "tranStateTableOffset")
        phys = req_int(ext, "commitLogOffset")
        decision = req_int(ext, "commitOrRollback")
        if decision not in (0, SYSFLAG_TRANSACTION_COMMIT, SYSFLAG_TRANSACTION_ROLLBACK):
            raise BadRequest(f"commitOrRollback {decision} is not 0, 8 or 12")
        if decision == 0:  # UNKNOW: the check service asks again later
            return
        txn = self.broker.transactions
        try:
            half = txn.half_for_end(phys, queue_offset, group)
        except EndRefused as exc:
            raise BadRequest(str(exc)) from None
        now = int(time.time() * 1000)
        from_check = ext.get("fromTransactionCheck", "false").lower() == "true"
        if not from_check and end_too_late(half, now, self.broker.config.transaction_time_out):
            raise BadRequest(
                "the producer's decision came after the message's CHECK_IMMUNITY_TIME_IN_SECONDS; "
                "waiting for the transaction check",
                ResponseCode.ILLEGAL_OPERATION,
            )
        if decision == SYSFLAG_TRANSACTION_ROLLBACK:
            txn.rollback(half, now)
            return
        result = txn.commit(half, now)
        if result is not None and result.status != PutStatus.OK:
            raise BadRequest(f"the committed message was not stored: {result.status.value}")

    @staticmethod
    def refuse_on_slave(cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        return cmd.response(
            ResponseCode.SLAVE_NOT_AVAILABLE, "this broker is a slave; END_TRANSACTION goes to its master"
        )

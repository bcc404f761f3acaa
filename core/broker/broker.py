"""The broker: store, topic and offset managers, client groups, and the remoting server.

Start order: recover the store, load topics and offsets, listen, register with every name
server. Stop order (SIGINT/SIGTERM): stop accepting, unregister from name servers, persist
offsets, flush and close the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ferrymq.core.auth.acl2_store import Acl2Store
from ferrymq.core.auth.quotas import QuotaConfig
from ferrymq.core.auth.security import Security
from ferrymq.core.broker.client_manager import ClientManager, ConsumerGroupInfo
from ferrymq.core.broker.consumer_offsets import ConsumerOffsetManager
from ferrymq.core.broker.controller_client import ControllerClient
from ferrymq.core.broker.listeners import CountedListener, ListenerView
from ferrymq.core.broker.long_polling import PullRequestHoldService
from ferrymq.core.broker.namesrv_registrar import NamesrvRegistrar
from ferrymq.core.broker.pop import PopService
from ferrymq.core.broker.pop.request_mode import RequestModes
from ferrymq.core.broker.processors.routing import build_dispatcher
from ferrymq.core.broker.rebalance_lock import RebalanceLockManager
from ferrymq.core.broker.remoting_acl import RemotingAcl
from ferrymq.core.broker.remoting_acl2 import RemotingAcl2
from ferrymq.core.broker.remoting_quotas import CODES as QUOTA_CODES
from ferrymq.core.broker.remoting_quotas import RemotingQuotas
from ferrymq.core.broker.replicated_state import ReplicatedStates
from ferrymq.core.broker.schedule import ScheduleMessageService
from ferrymq.core.broker.slave_sync import SlaveSyncService
from ferrymq.core.broker.stats import BrokerStats
from ferrymq.core.broker.subscription_group import SubscriptionGroupManager
from ferrymq.core.broker.timer import TimerMessageService
from ferrymq.core.broker.timeseries import TimeSeriesService
from ferrymq.core.broker.topic_config import TopicConfigManager
from ferrymq.core.broker.transaction import TransactionService
from ferrymq.core.config import BrokerConfig
from ferrymq.core.ha import EpochFile, EpochRefused, ReplicationState
from ferrymq.core.ha.epoch_sync import EpochFollower
from ferrymq.core.ha.master import HaMaster
from ferrymq.core.ha.slave import HaSlave
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.plain_acl import PlainAclFile
from ferrymq.core.remoting.route import TopicConfig
from ferrymq.core.remoting.transport import (
    ConnectionGate,
    HandlerResult,
    Listener,
    RemotingConnection,
    ServerLimits,
    serve,
)
from ferrymq.core.store import MessageStore

log = logging.getLogger("ferrymq.broker")


class Broker:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.boot_timestamp = int(time.time() * 1000)
        self.store = MessageStore(config)
        #: role, slaves and master link of this broker's group (core/ha)
        self.ha = ReplicationState(config)
        #: controller mode: which master epoch wrote which range of the log (core/ha/epoch.py)
        self.epochs = EpochFile.for_store(self.store)
        #: the HA service: a master's server (every master runs one), a slave's client
        self.ha_master: HaMaster | None = None
        self.ha_slave: HaSlave | None = None
        config_dir = config.store_path_root_dir / "config"
        self.topics = TopicConfigManager(config_dir / "topics.json", config)
        self.offsets = ConsumerOffsetManager(config_dir / "consumerOffset.json")
        self.clients = ClientManager(on_consumer_change=self._consumer_change)
        self.hold = PullRequestHoldService()
        self.stats = BrokerStats()
        self.subscription_groups = SubscriptionGroupManager(
            config_dir / "subscriptionGroup.json", config.auto_create_subscription_group
        )
        self.locks = RebalanceLockManager(config.rebalance_lock_max_live_time)
        self.schedule = ScheduleMessageService(self)
        self.timer = TimerMessageService(self)
        self.transactions = TransactionService(self)
        #: POP consumption (core/broker/pop): checkpoints, acks, revive; remoting and gRPC share it
        self.pop = PopService(self)
        self.pop_modes = RequestModes(config_dir / "messageRequestMode.json")
        #: who may do what (ACLs, the authorizer when on) and Kafka's SCRAM users (core/auth)
        self.security = Security(
            config_dir,
            config.kafka_authorizer_enable,
            config.super_users,
            config.allow_everyone_if_no_acl_found,
            QuotaConfig(config.quota_window_num, config.quota_window_size_seconds * 1000),
        )
        self.store.visible_listeners.append(self.hold.notify)
        self.ha.confirm_listeners.append(self.store.set_read_limit)  # the group high watermark
        self.ha.reset_confirm(self.store.read_limit)  # as persisted: a restart shows no more
        self.store.truncate_listeners.append(self.ha.truncated)
        #: controller mode: no role yet, sends refused (README "Controller mode")
        self.fenced = config.enable_controller_mode
        self.controller: ControllerClient | None = None
        #: controller mode: HA client address (host:port) -> broker id, from HA_SLAVE_HELLO
        self.ha_peer_ids = self.ha.peer_ids
        self.dispatcher = build_dispatcher(self)
        #: TLS of the remoting and VIP ports (tls.server.*), loaded now so bad files stop start-up
        self._server_tls = config.server_tls()
        #: the broker's own connections out (name servers, controller, a slave's master, other
        #: brokers): TLS with tls.enable, signed with accessKey/secretKey (core/remoting/outbound.py)
        self.outbound = config.outbound()
        self.server: Listener | None = None
        #: the VIP port (listenPort-2) Java slaves pull topic configs from; same handler
        self.vip_server: Listener | None = None
        #: frontend state a slave copies from its master (Kafka transaction coordinator)
        self.replicated_states = ReplicatedStates()
        self.slave_sync = SlaveSyncService(self)
        self.store.queue_opened_listeners.append(self._queue_opened)
        self.registrar: NamesrvRegistrar | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.connections: set[RemotingConnection] = set()
        #: who may do what, for every protocol (core/auth): one instance, so Kafka's ACLs and the
        #: plain_acl.yml accounts are one set of permissions per principal
        self.authorizer = self.security.acl_authorizer
        #: aclEnable: the remoting port's signature and permission check (core/broker/remoting_acl.py)
        self.acl = RemotingAcl(PlainAclFile(config.acl_file), self.authorizer) if config.acl_enable else None
        #: ACL 2.0 users and ACLs (core/auth/acl2_store.py), served by the codes 3001-3010 always
        self.acl2_store = Acl2Store(config_dir / "auth.json", self.authorizer)
        if (init_user := config.init_user()) is not None and self.acl2_store.init_user(*init_user):
            log.info("ACL 2.0: created the super user %s (initAuthenticationUser)", init_user[0])
        #: authenticationEnabled / authorizationEnabled: ACL 2.0 checks the remoting port; it wins over
        #: aclEnable, whose plain_acl.yml accounts then authenticate as ACL 2.0 users
        self.acl2 = (
            RemotingAcl2(
                self.acl2_store,
                self.authorizer,
                config.authentication_enabled,
                config.authorization_enabled,
                self.acl.file if self.acl is not None else None,
            )
            if config.authentication_enabled or config.authorization_enabled
            else None
        )
        self.remoting_guard: RemotingAcl | RemotingAcl2 | None = self.acl2 or self.acl
        #: client quotas on the remoting port, as Kafka counts them (core/broker/remoting_quotas.py)
        self.remoting_quotas = RemotingQuotas(self.security.quotas, self.remoting_guard is not None)
        self._remoting_gate = ConnectionGate(config.server_max_connections)
        self._vip_gate = ConnectionGate(config.server_max_connections)
        #: /metrics: open connections and refusals per listener; frontends add theirs (listeners.py)
        self.listeners: dict[str, ListenerView] = {
            "remoting": self._remoting_gate,
            "vip": self._vip_gate,
            "ha": CountedListener(lambda: self.ha_master.connection_count if self.ha_master else 0),
        }
        #: /metrics: requests parked now, by kind (long polls here, Kafka fetches from the frontend)
        self.parked: dict[str, Callable[[], int]] = {"pull": lambda: self.hold.waiting}
        #: the console's charts: the last hour of rates, lag, disk use, replication lag
        self.timeseries = TimeSeriesService(self)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def ha_addr(self) -> str | None:
        """host:port of a master's HA server (None on a slave)."""
        return self.config.ha_server_addr if self.ha_master is not None else None

    @property
    def vip_port(self) -> int | None:
        if self.vip_server is None:
            return None
        return int(self.vip_server.sockets[0].getsockname()[1])

    async def _serve(self, port: int, gate: ConnectionGate) -> Listener:
        return await serve(
            self._handle,
            self.config.listen_host,
            port,
            max_frame=self.config.max_frame_size,
            on_close=self._on_close,
            limits=ServerLimits(
                max_connections=self.config.server_max_connections,
                idle_timeout=self.config.server_channel_max_idle_time_seconds,
                max_in_flight=self.config.server_max_in_flight_requests,
            ),
            tls=self._server_tls,
            gate=gate,
        )

    async def _serve_vip(self, port: int) -> None:
        """Listen on the VIP port too; a busy default port (listenPort-2) only costs Java slaves
        their topic sync, so it is a warning, a configured fastListenPort an error."""
        try:
            self.vip_server = await self._serve(port, self._vip_gate)
        except OSError as exc:
            if self.config.fast_listen_port is not None:
                raise
            log.warning("VIP port %d not served (%s): Java slaves cannot pull topic configs", port, exc)
            return
        log.info("VIP port %s:%d serves the remoting protocol too", self.config.listen_host, self.vip_port)

    async def start(self) -> None:
        # before listenPort 0 becomes the port taken: HA listenPort+1, VIP listenPort-2 unless set
        ha_port = self.config.ha_port
        vip_port = self.config.vip_port
        self.store.start_services()
        if self.config.enable_controller_mode:
            await self._start_fenced(ha_port, vip_port)
            return
        if not self.config.is_slave:  # master-only services: a slave's store is replication's
            self.schedule.start()
            self.timer.start()
            self.transactions.start()
            self.pop.start()
        await self._listen(vip_port)
        if self.config.is_slave:
            self.ha_slave = HaSlave(self.config, self.store, self.ha, outbound=self.outbound)
            self.ha_slave.start()
            self.slave_sync.start()
        else:  # before registering: REGISTER_BROKER advertises the real HA port
            self.ha_master = HaMaster(self.config, self.store, self.ha)
            await self.ha_master.start(ha_port)
        self.registrar = NamesrvRegistrar(self)
        await self.registrar.register_all()
        self.registrar.start()
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="broker-housekeeping"))
        if self.acl is not None:
            self._tasks.append(asyncio.create_task(self.acl.file.watch(), name="broker-acl-watch"))
        self._tasks.append(asyncio.create_task(self._sample_stats(), name="broker-stats"))
        self.timeseries.start()
        log.info(
            "broker %s (cluster %s, id %d) listening on %s:%d, store %s",
            self.config.broker_name,
            self.config.broker_cluster_name,
            self.config.broker_id,
            self.config.listen_host,
            self.port,
            self.config.store_path_root_dir,
        )

    async def _listen(self, vip_port: int | None) -> None:
        self.server = await self._serve(self.config.listen_port, self._remoting_gate)
        if self.config.listen_port == 0:
            self.config.listen_port = self.port
            self.store.store_port = self.port
        if vip_port is not None:
            await self._serve_vip(vip_port)

    # ---- controller mode (core/broker/controller_client.py) -----------------------------------

    async def _start_fenced(self, ha_port: int, vip_port: int | None) -> None:
        """Controller mode: listen and register as a slave without a master, writes refused, until
        the controller names a master."""
        self.config.ha_listen_port = ha_port  # the port to serve HA on whenever this becomes master
        self.store.replica_only = True
        await self._listen(vip_port)
        self.registrar = NamesrvRegistrar(self)
        await self.registrar.register_all()
        self.registrar.start()
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="broker-housekeeping"))
        if self.acl is not None:
            self._tasks.append(asyncio.create_task(self.acl.file.watch(), name="broker-acl-watch"))
        self._tasks.append(asyncio.create_task(self._sample_stats(), name="broker-stats"))
        self.timeseries.start()
        self.controller = ControllerClient(self)
        self.controller.start()
        log.info(
            "broker %s (cluster %s, identity %d, controller mode) listening on %s:%d, fenced",
            self.config.broker_name,
            self.config.broker_cluster_name,
            self.config.controller_identity,
            self.config.listen_host,
            self.port,
        )

    async def become_master(self, epoch: int) -> None:
        """The controller elected this broker at ``epoch``: serve HA, take writes, route id 0.

        RocketMQ's changeToMaster order: refuse an epoch older than the last recorded one (this
        broker knows a newer master), stop following, cut a partly received entry, record
        ``(epoch, max offset)`` durably, and only then take writes; the topic table's
        stateVersion becomes the epoch, so the name servers prefer this master's registration
        to a stale one's."""
        if epoch < self.epochs.last_epoch:
            raise EpochRefused(f"elected at epoch {epoch}, but epoch {self.epochs.last_epoch} is recorded")
        if self.ha_slave is not None:
            await self.ha_slave.stop()
            self.ha_slave = None
        await self.slave_sync.stop()
        self.ha.master_addr = self.ha.master_ha_addr = None
        await self.store.truncate_to(self.store.commit_log_max_offset)  # a partial replicated entry
        await self.store.flush()  # the epoch's start is durable before the entry naming it
        if epoch > self.epochs.last_epoch:
            self.epochs.append(epoch, self.store.commit_log_max_offset)
        self.topics.set_state_version(epoch)
        self.config.switch_role(True)
        if self.ha_master is None:
            self.ha_master = HaMaster(self.config, self.store, self.ha)
            await self.ha_master.start(self.config.ha_port)
        self.store.replica_only = False
        self.fenced = False
        self.dispatcher = build_dispatcher(self)
        self.schedule.start()
        self.timer.start()
        self.transactions.start()
        self.pop.start()
        await self.replicated_states.promoted()  # e.g. Kafka transactions the old master left open
        if self.registrar is not None:
            await self.registrar.register_all()  # the name servers move this address to id 0
        log.warning("broker %s is MASTER at epoch %d", self.config.broker_name, epoch)

    async def become_slave(self, epoch: int, master_addr: str) -> None:
        """The controller named ``master_addr`` master at ``epoch``: stop writes, follow it."""
        was_master = self.ha_master is not None
        self.ha_peer_ids.clear()
        self.config.switch_role(False)
        self.store.replica_only = True
        self.fenced = False
        self.dispatcher = build_dispatcher(self)
        if self.ha_master is not None:
            await self.ha_master.stop()
            self.ha_master = None
        if was_master:
            await self.schedule.stop()
            await self.timer.stop()
            await self.transactions.stop()
            await self.pop.stop()
        if self.ha_slave is not None:
            await self.ha_slave.stop()
            self.ha_slave = None
        await self.slave_sync.stop()
        # a diverged tail (what this broker wrote as an older master that the new one never got)
        # is cut by the HA client before it takes a byte (core/ha/epoch_sync.py)
        self.ha.master_addr = master_addr
        self.ha.master_ha_addr = self.config.ha_master_address  # else learnt from the name servers
        if self.registrar is not None:
            await self.registrar.register_all()  # the answer names the new master's HA address
        follower = EpochFollower(self.store, self.epochs, epoch, self.outbound)
        self.ha_slave = HaSlave(self.config, self.store, self.ha, follower, self.outbound)
        self.ha_slave.start()
        self.slave_sync.start()
        log.warning("broker %s is SLAVE of %s at epoch %d", self.config.broker_name, master_addr, epoch)

    def in_sync_replica_ids(self) -> set[int]:
        """Controller mode, on a master: broker ids of the slaves now in sync."""
        if len(self.ha_peer_ids) > 64:  # forget links long closed (each reconnect is a new port)
            for gone in [a for a in self.ha_peer_ids if a not in self.ha.slaves]:
                del self.ha_peer_ids[gone]
        return {
            self.ha_peer_ids[r.addr]
            for r in self.ha.replicas()
            if self.ha.may_join(r, self.store.commit_log_max_offset) and r.addr in self.ha_peer_ids
        }

    def _queue_opened(self, topic: str, queue_id: int) -> None:
        """On a slave, a replicated entry of a topic it has no config for: copy the master's
        metadata now, not a slaveSyncInterval later, so a failover meanwhile still finds the
        topic (reference pitfall 8)."""
        if self.config.is_slave and self.topics.get(topic) is None:
            self.slave_sync.kick()

    def _handle(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        if conn not in self.connections:
            self.connections.add(conn)
        guard = self.remoting_guard
        if guard is not None and (refused := guard.check(cmd, conn.peer)) is not None:
            return refused
        if self.security.quotas.any and cmd.code in QUOTA_CODES:
            return self.remoting_quotas.handle(cmd, conn, self.dispatcher)
        return self.dispatcher(cmd, conn)

    def _on_close(self, conn: RemotingConnection) -> None:
        self.connections.discard(conn)
        self.clients.on_connection_closed(conn)

    async def _housekeeping(self) -> None:
        interval = min(self.config.flush_consumer_offset_interval, 10_000) / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                self.offsets.persist()
                self.clients.scan_expired(self.config.channel_expired_timeout / 1000)
            except Exception:
                log.exception("housekeeping failed")

    async def _sample_stats(self) -> None:
        """Once a second, the counters into their rate windows (mqadmin's TPS figures)."""
        while True:
            self.stats.tick()
            await asyncio.sleep(1.0)

    def _consumer_change(self, group: str, info: ConsumerGroupInfo) -> None:
        """Tell every member of the group to rebalance (NOTIFY_CONSUMER_IDS_CHANGED, oneway)."""
        for ch in list(info.channels.values()):
            ch.conn.invoke_oneway(
                RemotingCommand(
                    code=RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, ext_fields={"consumerGroup": group}
                )
            )

    def topic_created(self, tc: TopicConfig) -> None:
        if self.registrar is not None:
            self.registrar.kick()

    def topic_deleted(self, topic: str) -> None:
        if self.registrar is not None:
            self.registrar.kick()

    @property
    def registered(self) -> bool:
        return bool(self.registrar and self.registrar.registered)

    async def stop(self) -> None:
        log.info("broker %s shutting down", self.config.broker_name)
        for server in (self.server, self.vip_server):
            if server is not None:
                server.close()
        for conn in list(self.connections):
            conn.close()
        if self.registrar is not None:
            await self.registrar.stop()
        await self.slave_sync.stop()
        await self.timeseries.stop()
        if self.controller is not None:
            await self.controller.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self.ha_master is not None:
            await self.ha_master.stop()
        if self.ha_slave is not None:
            await self.ha_slave.stop()
        await self.pop.stop()
        self.pop.close()
        self.offsets.persist(force=True)
        self.topics.persist()
        if not self.config.is_slave:
            await self.schedule.stop()
            await self.timer.stop()
            await self.transactions.stop()
        await self.store.shutdown()
        log.info("broker %s stopped; data flushed", self.config.broker_name)

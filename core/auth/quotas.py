"""Client quotas as Kafka enforces them: byte rates and request-time share per user and client id.

Sans-IO (every call takes the time in ms), shared by the Kafka frontend and the remoting port so a principal's
limits hold whatever protocol it speaks. Facts from Apache Kafka (ClientQuotaManager, QuotaUtils, Rate,
SampledStat):

- Three quota kinds: ``producer_byte_rate`` (bytes/s of produce requests), ``consumer_byte_rate``
  (bytes/s of fetch responses), ``request_percentage`` (handler time as a percentage of one thread, KIP-124).
- Entities: ``user`` (the principal's name without ``User:``; ``ANONYMOUS`` on PLAINTEXT), ``client-id``,
  both, and the default of either (name None). The quota of a kind is the first set among (Kafka's order)
  user+client, user+<default client>, user, <default user>+client, <default user>+<default client>,
  <default user>, client, <default client>; clients that resolve to the same entity share one rate.
- Rates are Kafka's sampled windows (quota.window.num samples of quota.window.size.seconds): the rate is
  the sum of the live samples over the time since the oldest began, padded to at least num-1 whole windows.
- Over quota the throttle time is ``(rate - bound) / bound * window`` ms (QuotaUtils.throttleTime), the
  time that brings the rate back to the bound if nothing more came; request_percentage caps it at one
  window (Kafka's ClientRequestQuotaManager).

Leaves out: ``ip`` entities (connection-rate quotas), ``controller_mutation_rate``, custom quota callbacks,
the per-sensor metrics. A client with no quota of a kind is not measured for it (Kafka measures it anyway);
a quota set later starts from an empty rate.
"""

from __future__ import annotations

from dataclasses import dataclass

PRODUCE = "producer_byte_rate"
FETCH = "consumer_byte_rate"
REQUEST = "request_percentage"
KINDS = (PRODUCE, FETCH, REQUEST)
USER = "user"
CLIENT_ID = "client-id"
ENTITY_TYPES = (USER, CLIENT_ID)

#: an entity: sorted (type, name) pairs, name None for the type's default, as Kafka's ClientQuotaEntity
Entity = tuple[tuple[str, str | None], ...]
#: sensors unused this long are dropped (Kafka's inactive sensor expiry: one hour)
SENSOR_EXPIRY_MS = 3_600_000


def entity(
    user: str | None = None,
    client_id: str | None = None,
    *,
    default_user: bool = False,
    default_client: bool = False,
) -> Entity:
    """An entity from its parts; ``default_*`` names the default of that type."""
    parts: list[tuple[str, str | None]] = []
    if client_id is not None or default_client:
        parts.append((CLIENT_ID, None if default_client else client_id))
    if user is not None or default_user:
        parts.append((USER, None if default_user else user))
    return tuple(sorted(parts))


def user_name(principal: str) -> str:
    """A principal (``User:alice``) as quota entities name it (``alice``)."""
    return principal[5:] if principal.startswith("User:") else principal


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    """quota.window.num and quota.window.size.seconds."""

    samples: int = 11
    window_ms: int = 1000


class _Sample:
    __slots__ = ("events", "last_event_ms", "start_ms", "value")

    def __init__(self, now_ms: int) -> None:
        self.reset(now_ms)

    def reset(self, now_ms: int) -> None:
        self.value = 0.0
        self.events = 0
        self.start_ms = now_ms
        self.last_event_ms = now_ms


class SampledRate:
    """Kafka's Rate over a WindowedSum: values per second over the live samples."""

    __slots__ = ("_current", "_samples", "config")

    def __init__(self, config: QuotaConfig) -> None:
        self.config = config
        self._samples: list[_Sample] = []
        self._current = 0

    def record(self, value: float, now_ms: int) -> None:
        if not self._samples:
            self._samples.append(_Sample(now_ms))
        sample = self._samples[self._current]
        if now_ms - sample.start_ms >= self.config.window_ms:
            # one extra slot for a sample that overlaps the monitored window (SampledStat.advance)
            self._current = (self._current + 1) % (self.config.samples + 1)
            if self._current >= len(self._samples):
                sample = _Sample(now_ms)
                self._samples.append(sample)
            else:
                sample = self._samples[self._current]
                sample.reset(now_ms)
        sample.value += value
        sample.events += 1
        sample.last_event_ms = now_ms

    def _purge(self, now_ms: int) -> None:
        expire = self.config.samples * self.config.window_ms
        for sample in self._samples:
            if now_ms - sample.last_event_ms >= expire:
                sample.reset(now_ms)

    def window_ms(self, now_ms: int) -> int:
        """The time the rate divides by: since the oldest sample, at least samples-1 whole windows."""
        self._purge(now_ms)
        if not self._samples:
            self._samples.append(_Sample(now_ms))
        elapsed = now_ms - min(s.start_ms for s in self._samples)
        full, least = elapsed // self.config.window_ms, self.config.samples - 1
        if full < least:
            elapsed += (least - full) * self.config.window_ms
        return max(elapsed, 1)

    def measure(self, now_ms: int) -> float:
        """Per second."""
        window = self.window_ms(now_ms)  # purges first
        return sum(s.value for s in self._samples) * 1000.0 / window

    def last_used_ms(self) -> int:
        return max((s.last_event_ms for s in self._samples), default=0)


def throttle_ms(rate: float, bound: float, window_ms: int) -> int:
    """QuotaUtils.throttleTime: the delay X that brings rate O to bound T over window W, O*W/(W+X) = T."""
    # Java's Math.round: half up
    return int((rate - bound) / bound * window_ms + 0.5)


class ClientQuotas:
    """The quotas set (``set``/``remove``) and the rates measured against them (``record``)."""

    def __init__(self, config: QuotaConfig | None = None) -> None:
        self.config = config or QuotaConfig()
        self._quotas: dict[Entity, dict[str, float]] = {}
        #: per kind, whether any entity sets it: a client of a kind nobody limits costs one lookup
        self._kinds: set[str] = set()
        self._sensors: dict[tuple[str, str | None, str | None], SampledRate] = {}

    # ---- the quotas ---------------------------------------------------------------------------

    def entries(self) -> dict[Entity, dict[str, float]]:
        return {e: dict(v) for e, v in self._quotas.items()}

    def set_all(self, quotas: dict[Entity, dict[str, float]]) -> None:
        self._quotas = {e: dict(v) for e, v in quotas.items() if v}
        self._changed()

    def alter(self, ent: Entity, ops: dict[str, float | None]) -> None:
        """Set (a value) or remove (None) quota keys of one entity."""
        values = self._quotas.setdefault(ent, {})
        for key, value in ops.items():
            if value is None:
                values.pop(key, None)
            else:
                values[key] = float(value)
        if not values:
            del self._quotas[ent]
        self._changed()

    def _changed(self) -> None:
        self._kinds = {k for values in self._quotas.values() for k in values}
        self._sensors.clear()  # entities may resolve elsewhere now (Kafka updates its sensors' tags)

    def active(self, kind: str) -> bool:
        return kind in self._kinds

    @property
    def any(self) -> bool:
        """Whether any quota is set: a frontend's one test per request when none is."""
        return bool(self._kinds)

    def resolve(self, kind: str, user: str, client_id: str) -> tuple[str | None, str | None, float] | None:
        """The entity whose quota of ``kind`` applies, as the rate's key (user, client id), and the bound;
        None when no quota of that kind applies (DefaultQuotaCallback's order)."""
        q = self._quotas
        for key, tags in (
            (((CLIENT_ID, client_id), (USER, user)), (user, client_id)),
            (((CLIENT_ID, None), (USER, user)), (user, client_id)),
            (((USER, user),), (user, None)),
            (((CLIENT_ID, client_id), (USER, None)), (user, client_id)),
            (((CLIENT_ID, None), (USER, None)), (user, client_id)),
            (((USER, None),), (user, None)),
            (((CLIENT_ID, client_id),), (None, client_id)),
            (((CLIENT_ID, None),), (None, client_id)),
        ):
            values = q.get(key)
            if values is not None and kind in values:
                return tags[0], tags[1], values[kind]
        return None

    # ---- measuring ----------------------------------------------------------------------------

    def record(self, kind: str, user: str, client_id: str, value: float, now_ms: int) -> int:
        """Count ``value`` against the client's quota of ``kind``: the throttle time in ms (0: within)."""
        if kind not in self._kinds:
            return 0
        found = self.resolve(kind, user, client_id)
        if found is None:
            return 0
        tag_user, tag_client, bound = found
        key = (kind, tag_user, tag_client)
        rate = self._sensors.get(key)
        if rate is None:
            if len(self._sensors) > 10_000:
                self.expire(now_ms)
            rate = self._sensors[key] = SampledRate(self.config)
        rate.record(value, now_ms)
        measured = rate.measure(now_ms)
        if measured <= bound:
            return 0
        if bound <= 0:  # a zero quota: any use waits out the whole monitored window
            delay = self.config.samples * self.config.window_ms
        else:
            delay = throttle_ms(measured, bound, rate.window_ms(now_ms))
        if kind == REQUEST:
            delay = min(delay, self.config.window_ms)
        return delay

    def unrecord(self, kind: str, user: str, client_id: str, value: float, now_ms: int) -> None:
        """Take back a recorded value (a throttled fetch answers empty, as Kafka's unrecordQuotaSensor)."""
        found = self.resolve(kind, user, client_id) if kind in self._kinds else None
        if found is not None:
            rate = self._sensors.get((kind, found[0], found[1]))
            if rate is not None:
                rate.record(-value, now_ms)

    def max_in_window(self, kind: str, user: str, client_id: str) -> float | None:
        """The most one request may count without certain throttling (Kafka caps a fetch's max_bytes)."""
        found = self.resolve(kind, user, client_id) if kind in self._kinds else None
        if found is None:
            return None
        return found[2] * (self.config.samples - 1) * self.config.window_ms / 1000

    def expire(self, now_ms: int) -> None:
        stale = [k for k, r in self._sensors.items() if now_ms - r.last_used_ms() >= SENSOR_EXPIRY_MS]
        for k in stale:
            del self._sensors[k]

"""Kafka as a document source: an aiokafka consumer-group member with manual, explicit commits.

The worker owns the commit decisions (see `sidecar.worker.offsets`); this module only builds the
clients from a pipeline's `source.kafka` block (bootstrap, SASL PLAIN/SCRAM, TLS), turns records
into plain `Message`s, and forwards rebalance callbacks so the worker can commit before partitions
are revoked.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from sidecar.pipelines.schema import KafkaSourceConfig

log = logging.getLogger(__name__)

PartitionsCallback = Callable[[set[TopicPartition]], Awaitable[None]]


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = field(default_factory=tuple)
    timestamp_ms: int | None = None

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


def client_options(config: KafkaSourceConfig) -> dict[str, Any]:
    """Connection and security options shared by the consumer and the dead-letter producer."""
    security = config.security
    options: dict[str, Any] = {
        "bootstrap_servers": config.bootstrap_servers,
        "security_protocol": security.protocol,
    }
    if config.client_id:
        options["client_id"] = config.client_id
    if security.protocol.endswith("SSL"):
        tls = security.tls
        context = ssl.create_default_context(cafile=tls.ca_file if tls else None)
        if tls is not None:
            context.check_hostname = tls.check_hostname
            if tls.cert_file and tls.key_file:
                password = tls.key_password.get_secret_value() if tls.key_password else None
                context.load_cert_chain(tls.cert_file, tls.key_file, password)
        options["ssl_context"] = context
    if security.sasl is not None:
        options["sasl_mechanism"] = security.sasl.mechanism.value
        options["sasl_plain_username"] = security.sasl.username
        options["sasl_plain_password"] = security.sasl.password.get_secret_value()
    return options


def producer_max_request_size(config: KafkaSourceConfig) -> int:
    """Room for a poison message of the largest accepted size plus its dead-letter headers."""
    return max(1024 * 1024, config.max_message_bytes + 64 * 1024)


def make_producer(config: KafkaSourceConfig, record_limit: int | None = None) -> AIOKafkaProducer:
    """An idempotent producer (acks=all) on the source cluster, for the dead-letter topic.

    With `record_limit` (what the topic accepts), batches stay under it too: the broker checks the
    size of a whole record batch, not of one record.
    """
    max_request = producer_max_request_size(config)
    return AIOKafkaProducer(
        **client_options(config),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_request_size=max_request,
        max_batch_size=min(16384, record_limit or max_request),
    )


async def topic_max_message_bytes(config: KafkaSourceConfig, topic: str) -> int | None:
    """The topic's `max.message.bytes`; None when it cannot be read (no such topic yet, no ACL)."""
    admin = AIOKafkaAdminClient(**client_options(config))
    try:
        await admin.start()
        answers = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": None})]
        )
    except KafkaError as exc:
        log.warning("cannot read the configuration of topic [%s]: %s", topic, exc)
        return None
    finally:
        await admin.close()
    for answer in answers:
        for error_code, _, _, name, entries in answer.resources:
            for key, value, *_ in entries:
                if error_code == 0 and name == topic and key == "max.message.bytes":
                    return int(value)
    return None


class _Listener(ConsumerRebalanceListener):
    def __init__(self, on_revoked: PartitionsCallback, on_assigned: PartitionsCallback) -> None:
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._on_assigned(set(assigned))


class KafkaSource:
    def __init__(
        self,
        config: KafkaSourceConfig,
        *,
        on_revoked: PartitionsCallback,
        on_assigned: PartitionsCallback,
    ) -> None:
        self.config = config
        self._listener = _Listener(on_revoked, on_assigned)
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the Kafka source is not started")
        return self._consumer

    async def start(self) -> None:
        cfg = self.config
        consumer = AIOKafkaConsumer(
            **client_options(cfg),
            group_id=cfg.group_id,
            enable_auto_commit=False,
            auto_offset_reset=cfg.start,
            max_poll_records=cfg.max_poll_records,
            session_timeout_ms=cfg.session_timeout_ms,
            heartbeat_interval_ms=cfg.heartbeat_interval_ms,
            max_poll_interval_ms=cfg.max_poll_interval_ms,
            rebalance_timeout_ms=cfg.max_poll_interval_ms,
            isolation_level=cfg.isolation_level,
            # Over-size messages must still arrive so they can be dead-lettered, not stall the partition.
            max_partition_fetch_bytes=max(1024 * 1024, cfg.max_message_bytes * 2),
        )
        if cfg.pattern is not None:
            consumer.subscribe(pattern=cfg.pattern, listener=self._listener)
        else:
            consumer.subscribe(topics=list(cfg.topics or []), listener=self._listener)
        await consumer.start()
        self._consumer = consumer

    async def poll(self, max_records: int, timeout_ms: int) -> list[Message]:
        """Up to `max_records` messages, each partition's in offset order. Keeps group membership alive."""
        batches = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [
            Message(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp)
            for records in batches.values()
            for r in records
        ]

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self._consumer is not None else set()

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        owned = set(partitions) & self.assignment()
        if owned:
            self.consumer.pause(*owned)

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        owned = set(partitions) & self.assignment()
        if owned:
            self.consumer.resume(*owned)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.consumer.highwater(tp) if self._consumer is not None else None

    async def commit(self, offsets: dict[TopicPartition, int]) -> bool:
        """Commit; False when the group is rebalancing (the revocation handler commits instead)."""
        if not offsets:
            return True
        try:
            await self.consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
        except (CommitFailedError, IllegalStateError) as exc:
            log.info("commit skipped during a rebalance: %s", exc)
            return False
        except KafkaError as exc:
            log.warning("commit failed, will retry: %s", exc)
            return False
        return True

    async def stop(self) -> None:
        """Leave the group (a LeaveGroup request, so the others rebalance at once)."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

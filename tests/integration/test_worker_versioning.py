"""External versioning by Kafka offset: a stale write never overwrites a newer version.

Forced twice on the real stack: a document already stored at the version of a later offset, then
the worker writing an earlier message of that key; and a worker whose partition is revoked while its
bulk request is held back (the revocation times out), the new owner writing a newer version, then the
held request reaching the engine late.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sidecar.sinks.base import offset_version
from tests.integration.fault_proxy import FaultProxy
from tests.integration.worker_harness import (
    Engine,
    Names,
    Outgoing,
    WorkerProcess,
    committed_offsets,
    end_offsets,
    kafka_topics,
    produce,
    wait_for,
    write_pipeline,
)

pytestmark = pytest.mark.integration


def message(key: str, title: str) -> Outgoing:
    return Outgoing(key.encode(), json.dumps({"title": title}).encode())


async def stored(client: Engine, index: str, doc_id: str) -> dict[str, Any]:
    return dict((await client.client.get(f"/{index}/_doc/{doc_id}")).json())


async def caught_up(bootstrap: str, names: Names) -> bool:
    return await committed_offsets(bootstrap, names.group) == await end_offsets(bootstrap, names.topic, 1)


async def test_a_stale_message_is_acknowledged_without_overwriting_a_newer_version(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path
) -> None:
    engine_name, url, client = engine
    names = Names()
    client.own(names.index, names.dlq_index)
    async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic, partitions=1):
        # Offsets 0-2; the stored copy of `k` carries the version of offset 10, as a newer owner's
        # write of a later message would.
        await produce(
            kafka_bootstrap,
            names.topic,
            [message("k", "stale protein folding"), message("a", "cell biology"), message("b", "genomics")],
        )
        newer = {"title": "newer protein folding"}
        put = await client.client.put(
            f"/{names.index}/_doc/k",
            params={"version": offset_version(10), "version_type": "external"},
            json=newer,
        )
        assert put.status_code == 201, put.text
        pipeline = write_pipeline(tmp_path / "p.yaml", names, engine_name, url, kafka_bootstrap)
        worker = WorkerProcess(pipeline, tmp_path)
        try:
            await worker.wait_ready()
            await wait_for(
                lambda: caught_up(kafka_bootstrap, names), 120, "the worker to commit every offset"
            )
            assert await worker.metric("sidecar_worker_dead_lettered_total") == 0
            assert worker.terminate() == 0, worker.log_tail()
        finally:
            worker.ensure_stopped()
        kept = await stored(client, names.index, "k")
        assert kept["_source"] == newer and kept["_version"] == offset_version(10)
        for offset, doc_id in ((1, "a"), (2, "b")):
            written = await stored(client, names.index, doc_id)
            assert written["_version"] == offset_version(offset) and written["_source"]["ml"]["tokens"]
        assert await client.count(names.dlq_index) == 0


@pytest.mark.parametrize("versioning", ["auto", "none"])
async def test_a_writer_that_lost_its_partition_cannot_overwrite_the_new_owner(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path, versioning: str
) -> None:
    engine_name, url, client = engine
    names = Names()
    client.own(names.index, names.dlq_index)
    proxy = FaultProxy(url)
    await proxy.start()
    common: dict[str, Any] = {"sink__versioning": versioning, "source__kafka__max_poll_records": 10}
    # The old owner writes through the proxy and gives its in-flight batch 3 s when its partition is
    # revoked. Members are ordered by client id, so the only partition goes to the new owner.
    stale_pipeline = write_pipeline(
        tmp_path / "stale.yaml",
        names,
        engine_name,
        proxy.url,
        kafka_bootstrap,
        source__kafka__client_id="w1-old-owner",
        sink__request_timeout_s=120,
        worker__shutdown_timeout_s=3,
        **common,
    )
    new_pipeline = write_pipeline(
        tmp_path / "new.yaml",
        names,
        engine_name,
        url,
        kafka_bootstrap,
        source__kafka__client_id="w0-new-owner",
        **common,
    )
    old: WorkerProcess | None = None
    new: WorkerProcess | None = None
    async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic, partitions=1):
        try:
            await produce(kafka_bootstrap, names.topic, [message("k", "first version")])
            proxy.hold()
            old = WorkerProcess(stale_pipeline, tmp_path, "old-owner")
            await old.wait_ready()

            async def held() -> bool:
                return proxy.held > 0

            await wait_for(held, 120, "the old owner's bulk request to be held")
            new = WorkerProcess(new_pipeline, tmp_path, "new-owner")
            await new.wait_ready()
            await produce(kafka_bootstrap, names.topic, [message("k", "second version")])

            async def newer_written() -> bool:
                if not await caught_up(kafka_bootstrap, names):
                    return False
                doc = await stored(client, names.index, "k")
                return doc.get("_source", {}).get("title") == "second version"

            await wait_for(newer_written, 180, "the new owner to write and commit the second version")
            assert "revoked partitions still had work in flight" in old.log_tail(200)
            proxy.release()

            async def stale_arrived() -> bool:
                return "k" in proxy.acked or "k" in proxy.conflicted

            await wait_for(stale_arrived, 120, "the held stale write to reach the engine")
            doc = await stored(client, names.index, "k")
            if versioning == "auto":
                assert "k" in proxy.conflicted  # the engine refused the stale version...
                assert doc["_source"]["title"] == "second version"  # ...so the newer one survives
                assert doc["_version"] == offset_version(1)
            else:  # without versions the late write wins: what external versioning prevents
                assert doc["_source"]["title"] == "first version"
            for owner in (old, new):
                assert await owner.metric("sidecar_worker_dead_lettered_total") == 0
                assert owner.terminate() == 0, owner.log_tail()
            assert await client.count(names.dlq_index) == 0
        finally:
            proxy.release()
            for running in (old, new):
                if running is not None:
                    running.ensure_stopped()
            await proxy.close()

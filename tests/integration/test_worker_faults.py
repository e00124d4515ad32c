"""Fault suite: poison of every kind while the worker is killed with SIGKILL three times.

2,000 documents, each sent twice (revision 1, later revision 2), with 120 poison messages of every
kind the worker must survive: invalid JSON, not UTF-8, not an object, missing or non-string input,
over `max_message_bytes`, no key, JSON nested 5,000 levels deep, lone surrogate escapes in another
field and in the input field, and tombstones (dead-lettered by default). At the end, by id and by
source coordinates: every document indexed once at revision 2, every poison message dead-lettered
once in the index with its error type and a reason, the group's offsets at the end of the topic.
After each kill, with the worker dead, no commit is past an unacknowledged record: every message
below a committed offset is in the index (that revision or a later one) or in both dead letters.
`FIGURES` below are what docs/reliability.md reports.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.worker_harness import (
    Engine,
    Names,
    Outgoing,
    Produced,
    WorkerProcess,
    committed_offsets,
    end_offsets,
    kafka_topics,
    poison_of_every_kind,
    produce,
    read_topic,
    scifact_titles,
    wait_for,
    write_pipeline,
)

pytestmark = pytest.mark.integration

DOCS = 2_000
KILLS = 3
PARTITIONS = 4


def revision(doc: dict[str, str], rev: int) -> Outgoing:
    return Outgoing(doc["id"].encode(), json.dumps({**doc, "rev": rev}).encode())


async def unacknowledged_below(
    committed: dict[int, int], produced: Produced, client: Engine, names: Names, bootstrap: str
) -> list[tuple[int, int]]:
    """Coordinates below a committed offset whose record is neither indexed (at its revision or a
    later one) nor in both dead letters; read while no worker runs, so nothing lands meanwhile."""
    exists = (await client.client.head(f"/{names.dlq_index}")).status_code == 200
    letters = await client.docs(names.dlq_index) if exists else {}
    in_index = {(v["source"]["partition"], v["source"]["offset"]) for v in letters.values()}
    ends = await end_offsets(bootstrap, names.dlq_topic, PARTITIONS)
    records = await read_topic(bootstrap, names.dlq_topic, sum(ends.values()))
    in_topic = {
        (int(dict(r.headers)["sidecar.source.partition"]), int(dict(r.headers)["sidecar.source.offset"]))
        for r in records
    }
    indexed = await client.docs(names.index, ["rev"])
    missing = []
    for (partition, offset), message in sorted(produced.at.items()):
        if offset >= committed.get(partition, 0):
            continue
        if message.malformed:
            acknowledged = (partition, offset) in in_index and (partition, offset) in in_topic
        else:
            stored = indexed.get(message.key.decode() if message.key else "")
            acknowledged = stored is not None and stored["rev"] >= json.loads(message.value)["rev"]
        if not acknowledged:
            missing.append((partition, offset))
    return missing


async def test_poison_of_every_kind_and_three_sigkills(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path
) -> None:
    engine_name, url, client = engine
    names = Names()
    client.own(names.index, names.dlq_index)
    docs = scifact_titles(DOCS)
    poison = poison_of_every_kind(120)  # 10 of each kind
    # Revision 2 of each id comes after its revision 1 (same key, same partition, later offset).
    stream = [revision(d, 1) for d in docs] + [revision(d, 2) for d in docs]
    for n, message in enumerate(poison):
        stream.insert(n * len(stream) // len(poison), message)
    async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic, partitions=PARTITIONS):
        produced = await produce(kafka_bootstrap, names.topic, stream)
        expected_letters = {at: m.malformed for at, m in produced.at.items() if m.malformed}
        pipeline = write_pipeline(
            tmp_path / "p.yaml",
            names,
            engine_name,
            url,
            kafka_bootstrap,
            source__kafka__max_poll_records=100,
            worker__max_in_flight_docs=400,
        )
        ends = await end_offsets(kafka_bootstrap, names.topic, PARTITIONS)

        async def progress() -> int:
            return sum((await committed_offsets(kafka_bootstrap, names.group)).values())

        total = sum(ends.values())
        for k in range(1, KILLS + 1):
            worker = WorkerProcess(pipeline, tmp_path)
            try:
                await worker.wait_ready()

                async def past(
                    threshold: int = k * total // (KILLS + 1), alive: WorkerProcess = worker
                ) -> bool:
                    if alive.proc.poll() is not None:
                        raise AssertionError(f"worker exited {alive.proc.returncode}:\n{alive.log_tail()}")
                    return await progress() >= threshold

                await wait_for(past, 300, f"kill {k}: offsets past {k}/{KILLS + 1} of the topic")
                worker.kill()
            finally:
                worker.ensure_stopped()
            committed = await committed_offsets(kafka_bootstrap, names.group)
            assert not await unacknowledged_below(committed, produced, client, names, kafka_bootstrap)
        assert await progress() < total, "a kill came after the end of the stream"

        worker = WorkerProcess(pipeline, tmp_path)
        try:
            await worker.wait_ready()

            async def done() -> bool:
                if worker.proc.poll() is not None:
                    raise AssertionError(f"worker exited {worker.proc.returncode}:\n{worker.log_tail()}")
                return await committed_offsets(kafka_bootstrap, names.group) == ends

            await wait_for(done, 300, "the offsets to reach the end after the kills")
            assert worker.terminate() == 0, worker.log_tail()
        finally:
            worker.ensure_stopped()

        indexed = await client.docs(names.index, ["rev"])
        lost = {d["id"] for d in docs} - set(indexed)
        stale = {i for i, source in indexed.items() if source.get("rev") != 2}
        assert await client.count(names.index) == DOCS and not lost and not stale
        assert len(indexed) == DOCS  # one document per id: nothing duplicated

        letters = await client.docs(names.dlq_index)
        found = {(v["source"]["partition"], v["source"]["offset"]): v["error"] for v in letters.values()}
        assert {at: error["type"] for at, error in found.items()} == expected_letters
        assert all(error["reason"] for error in found.values())

        records = await read_topic(kafka_bootstrap, names.dlq_topic, len(expected_letters))
        copies = Counter(
            (int(dict(r.headers)["sidecar.source.partition"]), int(dict(r.headers)["sidecar.source.offset"]))
            for r in records
        )
        assert set(copies) == set(expected_letters)  # the topic may hold redelivered copies (at least once)
        print(
            f"FIGURES engine={engine_name} messages={len(stream)} documents={DOCS} revisions={2 * DOCS} "
            f"poison={len(poison)} kills={KILLS} lost=0 stale=0 duplicated_in_index=0 "
            f"dead_letter_topic_extra_copies={sum(copies.values()) - len(copies)}"
        )

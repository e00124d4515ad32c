"""`sidecar eval` loads a model (with its progress line) before encoding with it, and only then: a
rerun served from the cache loads nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sidecar.eval.dataset import load_dataset
from sidecar.eval.encoding import Encodings, encodings_for
from sidecar.eval.runner import DEFAULT_SPARSE, open_service
from sidecar.inference.loading import load_models
from sidecar.settings import Settings
from tests.unit.eval.test_dataset import write


async def test_the_model_loads_first_and_only_when_something_must_be_encoded(tmp_path: Path) -> None:
    dataset = load_dataset(write(
        tmp_path / "tiny",
        [{"_id": "d1", "title": "Dogs", "text": "dogs bark"}, {"_id": "d2", "text": "cats purr"}],
        [{"_id": "q1", "text": "barking"}],
        "q1\td1\t1\n",
    ))  # fmt: skip
    loaded: list[list[str]] = []
    settings = Settings(registry_path=tmp_path / "r.sqlite3", device="cpu")
    async with open_service(settings) as service:

        async def recording(endpoints: Sequence[str]) -> None:
            loaded.append(list(endpoints))
            await load_models(service, endpoints)

        async def encode() -> Encodings:
            return await encodings_for(DEFAULT_SPARSE, dataset, cache_dir=tmp_path / "cache", max_length=64,
                                       service=service, load_models=recording)  # fmt: skip

        first = await encode()
        assert loaded == [[DEFAULT_SPARSE.endpoint]]
        again = await encode()  # everything cached: no model is loaded
        assert loaded == [[DEFAULT_SPARSE.endpoint]]
    assert first.docs.keys() == again.docs.keys() == {"d1", "d2"}

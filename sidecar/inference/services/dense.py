"""Local dense encoder: mean pooling over real tokens + L2 normalisation (sentence-transformers'
recipe for all-MiniLM-L6-v2 and similar), as a batching-engine backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sidecar.errors import ModelNotReadyError
from sidecar.inference.batching import Encoded
from sidecar.inference.models import (
    choose_device,
    load_fast_tokenizer,
    pad_batch,
    quiet_transformers,
    resolve_model_path,
    set_cpu_threads,
)
from sidecar.inference.types import DenseEmbedding


def _st_max_length(path: str) -> int | None:
    """sentence-transformers folders declare the length the model was trained for."""
    config = Path(path) / "sentence_bert_config.json"
    if config.is_file():
        value = json.loads(config.read_text()).get("max_seq_length")
        return int(value) if value else None
    return None


class DenseBackend:
    def __init__(
        self,
        model_id: str,
        *,
        device: str = "auto",
        max_length: int | None = None,
        threads: int | None = None,
    ) -> None:
        import torch
        from transformers import AutoModel

        quiet_transformers()
        path = resolve_model_path(model_id)
        choice = choose_device(device)
        if choice.device == "cpu":
            set_cpu_threads(threads)
        self.max_length = max_length or _st_max_length(path) or 512
        try:
            model = AutoModel.from_pretrained(path, dtype=choice.dtype)
            self.tokenizer, _ = load_fast_tokenizer(path, self.max_length)
        except Exception as exc:
            raise ModelNotReadyError(f"cannot load dense model [{model_id}]: {exc}") from exc
        self.model = model.eval().to(choice.device)
        self.device = choice.device
        self.dimensions = int(self.model.config.hidden_size)
        self.name = f"dense:{model_id}"
        self._torch = torch

    def tokenize(self, texts: list[str]) -> list[Encoded]:
        return [Encoded(e.ids, bool(e.overflowing)) for e in self.tokenizer.encode_batch(texts)]

    def warmup(self) -> None:
        self.forward(self.tokenize(["warm up the dense encoder", "another warm-up text " * 8]))

    def embed(self, batch: list[Encoded]) -> Any:
        """[batch, dims] unit vectors (float32, on CPU)."""
        torch = self._torch
        ids, mask = pad_batch(batch, self.device)
        with torch.inference_mode():
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * weights).sum(dim=1).float()
            mean = summed / weights.sum(dim=1).float().clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1).cpu()

    def infer(self, batch: list[Encoded]) -> Any:
        """The model work: [batch, dims] unit vectors as a CPU array."""
        return self.embed(batch).numpy()

    def decode(self, batch: list[Encoded], raw: Any) -> list[DenseEmbedding]:
        """`infer`'s array as lists of floats: plain numpy, so it runs off the torch thread."""
        return [DenseEmbedding(v, e.truncated) for v, e in zip(raw.tolist(), batch, strict=True)]

    def forward(self, batch: list[Encoded]) -> list[DenseEmbedding]:
        """`infer` then `decode` on the calling thread."""
        return self.decode(batch, self.infer(batch))


def to_bytes(vector: list[float]) -> list[int]:
    """int8 variant of a unit vector (`text_embedding_bytes`): round(x * 127), clipped."""
    return [max(-128, min(127, round(x * 127))) for x in vector]

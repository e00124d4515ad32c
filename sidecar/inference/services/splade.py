"""Local SPLADE sparse encoder (any masked-LM checkpoint) as a batching-engine backend.

Pooling: weight(token) = max over real (non-padding) positions of log(1 + relu(logit)).
Because log1p(relu(x)) is monotonic, we take the masked max of the raw logits first and apply
log1p(relu) to the [batch, vocab] result only. The vocabulary projection (the costliest part for
small encoders) never materialises [batch, length, vocab]: on CPU it runs in tiles of similar-length
texts against cache-sized blocks of the vocabulary; on GPU in slices of `slice_tokens` positions
with a running max. Peak memory stays bounded whatever the input length.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sidecar.errors import ModelNotReadyError
from sidecar.inference.batching import Encoded
from sidecar.inference.models import (
    choose_device,
    cpu_has_native_bf16,
    load_fast_tokenizer,
    pad_batch,
    quiet_transformers,
    resolve_model_path,
    set_cpu_threads,
)
from sidecar.inference.types import SparseEmbedding
from sidecar.rank_features import legal_token

log = logging.getLogger(__name__)

TILE_ROWS = 512  # most positions per CPU matmul (a longer text gets a tile of its own)
LOGITS_PER_BLOCK = 2_000_000  # [tile rows, vocabulary block] logits projected at once on CPU


class SplitHead:
    """A masked-LM head as `transform` + bias-free projection (`weight`, applied with F.linear: the
    transposed bf16 matmul misses oneDNN's fast path on CPU); the vocabulary bias is constant over
    positions, so it is added after the max (saves a full pass over [positions, vocab])."""

    def __init__(self, transform: Callable[[Any], Any], weight: Any, bias: Any) -> None:
        self.transform, self.weight, self.bias = transform, weight, bias

    def to(self, dtype: Any) -> SplitHead:
        import copy

        transform = copy.deepcopy(self.transform)
        if hasattr(transform, "to"):
            transform = transform.to(dtype)
        bias = None if self.bias is None else self.bias.detach().float()
        return SplitHead(transform, self.weight.detach().to(dtype), bias)


def mlm_head(model: Any) -> SplitHead | None:
    """The vocabulary head of the masked-LM families we know (others: full-logits fallback)."""
    predictions = getattr(getattr(model, "cls", None), "predictions", None)
    if predictions is not None:  # BERT
        decoder = predictions.decoder
        return SplitHead(predictions.transform, decoder.weight, decoder.bias)
    if hasattr(model, "vocab_projector"):  # DistilBERT (OpenSearch neural-sparse models)

        def transform(hidden: Any) -> Any:
            return model.vocab_layer_norm(model.activation(model.vocab_transform(hidden)))

        return SplitHead(transform, model.vocab_projector.weight, model.vocab_projector.bias)
    lm_head = getattr(model, "lm_head", None)
    if lm_head is not None and hasattr(lm_head, "decoder"):  # RoBERTa / XLM-R

        def lm_transform(hidden: Any) -> Any:
            import torch

            return lm_head.layer_norm(torch.nn.functional.gelu(lm_head.dense(hidden)))

        return SplitHead(lm_transform, lm_head.decoder.weight, lm_head.decoder.bias)
    return None


class SpladeBackend:
    def __init__(
        self,
        model_id: str,
        *,
        device: str = "auto",
        max_length: int = 512,
        threads: int | None = None,
        slice_tokens: int | None = None,
        cpu_bf16: bool | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForMaskedLM

        quiet_transformers()
        path = resolve_model_path(model_id)
        choice = choose_device(device)
        if choice.device == "cpu":
            set_cpu_threads(threads)
        try:
            model = AutoModelForMaskedLM.from_pretrained(path, dtype=choice.dtype)
            self.tokenizer, hf_tokenizer = load_fast_tokenizer(path, max_length)
        except Exception as exc:
            raise ModelNotReadyError(f"cannot load sparse model [{model_id}]: {exc}") from exc
        self.model = model.eval().to(choice.device)
        self.encoder = self.model.base_model
        self.head = mlm_head(self.model)
        self.device = choice.device
        self.name = f"sparse:{model_id}"
        self.max_length = max_length
        self.slice_tokens = slice_tokens or 32768  # GPU only: positions projected at once
        # The vocabulary projection dominates small encoders: on CPUs with native bf16 it runs
        # ~2.5x faster in bf16, within the 9-bit precision rank_features stores anyway.
        self.head_dtype = choice.dtype
        if choice.device == "cpu" and cpu_bf16 is not False and (cpu_bf16 or cpu_has_native_bf16()):
            self.head_dtype = torch.bfloat16
            self.head = self.head.to(torch.bfloat16) if self.head else None
        vocab = hf_tokenizer.get_vocab()
        id_to_token = [""] * max(len(vocab), self.model.config.vocab_size)
        for token, idx in vocab.items():
            if idx < len(id_to_token):
                id_to_token[idx] = token
        # Legal rank_features names once per vocabulary entry, not per document.
        self.vocab = [legal_token(t) or "" for t in id_to_token]
        self._torch = torch

    def tokenize(self, texts: list[str]) -> list[Encoded]:
        encodings = self.tokenizer.encode_batch(texts)
        return [Encoded(e.ids, bool(e.overflowing)) for e in encodings]

    def warmup(self) -> None:
        self.forward(
            self.tokenize(["warm up the sparse encoder", "a second, somewhat longer warm-up text " * 8])
        )

    def pooled(self, batch: list[Encoded]) -> Any:
        """[batch, vocab] SPLADE weights (float32, on the model device)."""
        torch = self._torch
        ids, mask = pad_batch(batch, self.device)
        with torch.inference_mode():
            if self.head is None:  # unknown family: full logits, still max-first
                logits = self.model(input_ids=ids, attention_mask=mask).logits
                logits = logits.masked_fill(mask.unsqueeze(-1) == 0, float("-inf"))
                return torch.log1p(torch.relu(logits.amax(dim=1).float()))
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            # Padding positions get a copy of the text's first token ([CLS]) state: their logits
            # then equal a real position's, so the plain max over positions is the masked max
            # without a masking pass over [batch, length, vocab].
            batch_size, length, width = hidden.shape
            positions = torch.arange(length, device=self.device).expand(batch_size, length)
            positions = torch.where(mask.bool(), positions, 0)
            hidden = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, width))
            hidden = hidden.to(self.head_dtype)
            vocab_size = self.head.weight.shape[0]
            out = torch.empty((batch_size, vocab_size), device=self.device, dtype=self.head_dtype)
            if self.device == "cpu":
                self._max_by_vocab_block(self.head, hidden, [len(e.ids) for e in batch], out)
            else:
                self._max_by_sequence_slice(self.head.weight, self.head.transform(hidden), out)
            pooled = out.float()
            if self.head.bias is not None:
                pooled += self.head.bias.to(pooled.device, torch.float32)
            return torch.log1p(torch.relu(pooled))

    def _max_by_vocab_block(self, head: SplitHead, hidden: Any, lengths: list[int], out: Any) -> None:
        """CPU: project positions onto one slice of the vocabulary at a time, sized so the
        [positions, slice] block stays in cache while it is max-reduced. Projecting the whole
        vocabulary at once spills [batch, length, vocab] to memory and the max then costs as much
        as the matmul (2.8x slower for 64 sentences on a 2-core EPYC). Texts are projected in
        groups of similar length (padding rows stay under ~15%), in tiles of at most `TILE_ROWS`
        positions whose row count is rounded up: oneDNN compiles and caches a kernel, with its own
        packed copy of the weights, per matmul shape, so a few fixed shapes keep both the
        compilation time (~1 ms per new shape) and the cache's memory (hundreds of MB over a
        corpus with free shapes) bounded. The head's transform runs per tile for the same reason."""
        torch = self._torch
        weight = head.weight
        for group, longest in _length_groups(lengths):
            per_tile = max(1, TILE_ROWS // longest)
            for start in range(0, len(group), per_tile):
                tile = group[start : start + per_tile]
                rows = torch.tensor(tile, device=self.device)
                real = len(tile) * longest
                flat = hidden.index_select(0, rows)[:, :longest].reshape(real, -1)
                padded = _round_rows(real)
                if padded > real:
                    flat = torch.cat([flat, flat.new_zeros((padded - real, flat.shape[1]))])
                flat = head.transform(flat)
                block = _vocab_block(padded)
                result = out.new_empty((len(tile), out.shape[1]))
                for lo in range(0, weight.shape[0], block):
                    logits = torch.nn.functional.linear(flat, weight[lo : lo + block])[:real]
                    torch.amax(logits.view(len(tile), longest, -1), dim=1, out=result[:, lo : lo + block])
                out.index_copy_(0, rows, result)

    def _max_by_sequence_slice(self, weight: Any, states: Any, out: Any) -> None:
        """GPU: at most ~slice_tokens positions are projected at once; long texts are projected
        in sequence slices with a running max, so [batch, length, vocab] is never materialised."""
        torch = self._torch
        batch_size, length, _ = states.shape
        step = min(length, self.slice_tokens)
        texts_per_slice = max(1, self.slice_tokens // length)
        for lo in range(0, batch_size, texts_per_slice):
            hi = min(lo + texts_per_slice, batch_size)
            rows = out[lo:hi]
            torch.amax(torch.nn.functional.linear(states[lo:hi, :step], weight), dim=1, out=rows)
            for start in range(step, length, step):
                logits = torch.nn.functional.linear(states[lo:hi, start : start + step], weight)
                torch.maximum(rows, logits.amax(dim=1), out=rows)

    def infer(self, batch: list[Encoded]) -> tuple[Any, Any, Any]:
        """The model work: the batch's non-zero weights as CPU arrays (vocabulary ids, weights,
        count per text, in row-major order): only these leave the device."""
        torch = self._torch
        weights = self.pooled(batch)
        rows, cols = torch.nonzero(weights, as_tuple=True)
        values = weights[rows, cols]
        counts = torch.bincount(rows, minlength=len(batch))
        return cols.cpu().numpy(), values.cpu().numpy(), counts.cpu().numpy()

    def decode(self, batch: list[Encoded], raw: tuple[Any, Any, Any]) -> list[SparseEmbedding]:
        """`infer`'s arrays as token maps: plain numpy and Python, so it runs off the torch thread."""
        return token_maps(self.vocab, batch, raw)

    def forward(self, batch: list[Encoded]) -> list[SparseEmbedding]:
        """`infer` then `decode` on the calling thread."""
        return self.decode(batch, self.infer(batch))


def token_maps(vocab: list[str], batch: list[Encoded], raw: tuple[Any, Any, Any]) -> list[SparseEmbedding]:
    """Non-zero weights (vocabulary ids, weights, count per text, row-major numpy arrays) as one
    token map per text; ids whose token is not a legal `rank_features` name are dropped."""
    cols, values, counts = raw
    cols_list, values_list = cols.tolist(), values.tolist()
    results = []
    pos = 0
    for enc, count in zip(batch, counts.tolist(), strict=True):
        end = pos + count
        embedding = {vocab[c]: v for c, v in zip(cols_list[pos:end], values_list[pos:end], strict=True)}
        embedding.pop("", None)
        results.append(SparseEmbedding(embedding=embedding, is_truncated=enc.truncated))
        pos = end
    return results


def _vocab_block(positions: int) -> int:
    """Vocabulary rows per projection block: about 2M logits per block (4 MB of bf16, within
    this class of CPU's L3), a power of two between 256 and 4096."""
    block = 256
    while block < 4096 and positions * block * 2 <= LOGITS_PER_BLOCK:
        block *= 2
    return block


def _round_rows(rows: int) -> int:
    """Rows rounded up to a multiple of 16 (below 64) or 64: 11 shapes up to `TILE_ROWS`."""
    step = 16 if rows < 64 else 64
    return -(-rows // step) * step


def _length_groups(lengths: list[int], slack: float = 1.15) -> list[tuple[list[int], int]]:
    """Text indexes grouped by similar length, each with its longest length: a text joins the
    current group (taken in length order) while padded rows stay within `slack` x real rows."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups: list[tuple[list[int], int]] = []
    members: list[int] = []
    real = 0
    for i in order:
        n = lengths[i]
        if members and (len(members) + 1) * n > slack * (real + n):
            groups.append((members, lengths[members[-1]]))
            members, real = [], 0
        members.append(i)
        real += n
    if members:
        groups.append((members, lengths[members[-1]]))
    return groups

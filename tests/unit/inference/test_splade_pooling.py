"""SPLADE pooling on CPU (length groups, vocabulary blocks, padded rows) against the textbook
computation, in exact fp32 mode, for batches mixing very different lengths."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sidecar.inference.services.splade import (
    LOGITS_PER_BLOCK,
    SpladeBackend,
    _length_groups,
    _round_rows,
    _vocab_block,
)


@pytest.fixture(scope="module")
def fp32_backend() -> SpladeBackend:
    return SpladeBackend(".splade_tiny", device="cpu", max_length=512, cpu_bf16=False)


def textbook(backend: SpladeBackend, ids: list[int]) -> torch.Tensor:
    """Full logits of one unpadded text, log1p(relu), max over positions."""
    tensor = torch.tensor([ids])
    with torch.inference_mode():
        logits = backend.model(input_ids=tensor, attention_mask=torch.ones_like(tensor)).logits[0]
    return torch.log1p(torch.relu(logits)).amax(dim=0)


TEXTS = [
    "Fox.",
    "A fox jumps.",
    "Vitamin D deficiency and bone density in adults.",
    "short one, a bit longer now",
    " ".join(f"word{i} measured in cohort {i % 7}" for i in range(60)),  # a few hundred tokens
    "Aspirin lowers the risk of a second myocardial infarction in older patients.",
    "x " * 700,  # cut at 512
]


def test_mixed_batch_equals_textbook_per_text(fp32_backend: SpladeBackend) -> None:
    encoded = fp32_backend.tokenize(TEXTS)
    assert len({len(e.ids) for e in encoded}) == len(TEXTS) and encoded[-1].truncated
    pooled = fp32_backend.pooled(encoded)
    for row, enc in zip(pooled, encoded, strict=True):
        want = textbook(fp32_backend, list(enc.ids))
        assert torch.allclose(row, want, atol=1e-4), float((row - want).abs().max())


def test_result_does_not_depend_on_batch_composition(fp32_backend: SpladeBackend) -> None:
    encoded = fp32_backend.tokenize(TEXTS)
    together = fp32_backend.pooled(encoded)
    alone = torch.cat([fp32_backend.pooled([e]) for e in encoded])
    reversed_ = fp32_backend.pooled(encoded[::-1]).flip(0)
    assert torch.allclose(together, alone, atol=1e-4)
    assert torch.allclose(together, reversed_, atol=1e-5)


def test_forward_returns_legal_token_maps_in_input_order(fp32_backend: SpladeBackend) -> None:
    encoded = fp32_backend.tokenize(["bone density", "Fox."])
    results = fp32_backend.forward(encoded)
    assert "bone" in results[0].embedding and "fox" in results[1].embedding
    assert all(w > 0 and "." not in t for r in results for t, w in r.embedding.items())


@given(st.lists(st.integers(min_value=1, max_value=512), min_size=1, max_size=200))
def test_length_groups_cover_every_text_once_with_bounded_padding(lengths: list[int]) -> None:
    groups = _length_groups(lengths)
    members = sorted(i for group, _ in groups for i in group)
    assert members == list(range(len(lengths)))
    for group, longest in groups:
        assert longest == max(lengths[i] for i in group)
        real = sum(lengths[i] for i in group)
        # A group only grows while padded rows stay within 15% of real ones (a singleton is exact).
        assert len(group) * longest <= 1.15 * real + 1e-9


@given(st.integers(min_value=1, max_value=64 * 1024))
def test_row_rounding_and_block_sizes(rows: int) -> None:
    padded = _round_rows(rows)
    assert rows <= padded < rows + 64 and padded % (16 if rows < 64 else 64) == 0
    block = _vocab_block(padded)
    assert block in (256, 512, 1024, 2048, 4096)
    assert block == 256 or padded * block <= LOGITS_PER_BLOCK

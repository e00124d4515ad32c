"""OpenVINO runtime for local SPLADE and dense models on CPU (`SIDECAR_CPU_RUNTIME`).

The torch model is exported once, with its pooling inside the graph, and the graph is cached on
disk; later loads read the cached graph and never load the torch weights. The SPLADE graph does
exactly what `SpladeBackend.pooled` does: padding positions take the text's first token's state,
the vocabulary is projected in blocks of `VOCAB_BLOCK` rows with a max over positions per block
(so `[batch, length, vocab]` never exists), the bias is added after the max, then log(1 + relu).
The dense graph is `DenseBackend.embed`: mean over real tokens, L2-normalised.

No text is padded: texts of the same token length share one `[texts, length]` request (up to
`GROUP_TOKENS` tokens), any other text is a request of its own, on a model compiled with OpenVINO's
latency hint (`compile_graph` says why). Sharing a request reads the vocabulary projection's
weights (30,522 rows) once for the group instead of once per text: on SciFact titles in
length-sorted batches of 64, 1.1-1.4x the docs/s of one request per text, with identical
outputs; long texts rarely share a length and run as before. Precision is fp32 whatever the CPU,
so the weights match the exact torch path's within `rank_features`' 9 significant bits.

Only model families whose export is tested run here (`EXPORTABLE`); a new export is also checked
against the eager torch module on probe texts before it is cached. Anything else — OpenVINO not
installed, another family, an export that fails or disagrees — runs on torch (`load_cpu_backend`
logs why), unless `openvino` was required.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.errors import ModelNotReadyError
from sidecar.inference.batching import Encoded
from sidecar.inference.models import load_fast_tokenizer, model_fingerprint, resolve_model_path
from sidecar.inference.types import DenseEmbedding, SparseEmbedding

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the graphs change: older cache entries are then ignored
VOCAB_BLOCK = 2048  # vocabulary rows projected (and max-reduced) at once inside the SPLADE graph
GROUP_TOKENS = 512  # most tokens in one request of equal-length texts (titles: 256-1024 ran alike)
EXPORTABLE = {"bert"}  # `model_type`s whose export is tested (BERT masked LMs, BERT sentence encoders)
PROBE_TEXTS = ["a probe text for the exported graph", "short", "a longer probe text, " * 12]
PROBE_TOLERANCE = 1e-4

exports = 0  # graphs exported by this process (a cached graph is read, not exported)


def default_cache_dir() -> Path:
    """The user's cache (not the working directory): every process, from any folder, reuses one export."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sparse-sidecar" / "openvino"


class ExportUnsupported(Exception):
    """This model cannot run on OpenVINO here (the reason is the message); torch can."""


def import_openvino() -> Any:
    """The `openvino` module, imported without its usage telemetry: importing it (and converting a
    model) sends events to Google Analytics unless a consent file in the user's home says no. When
    `openvino_telemetry` cannot be imported OpenVINO uses its own no-op stub, so it is made
    unimportable before the first import. The sidecar never reports usage anywhere."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    import openvino as ov

    return ov


def available() -> bool:
    return importlib.util.find_spec("openvino") is not None


# --- the graphs ------------------------------------------------------------------------------------
def splade_graph(model: Any) -> Any:
    """SPLADE weights `[batch, vocab]` of a masked LM, as one torch module to export."""
    import torch

    from sidecar.inference.services.splade import mlm_head

    found = mlm_head(model)
    if found is None:
        raise ExportUnsupported(f"no known masked-LM head on [{type(model).__name__}]")
    head = found  # the module below closes over it

    class SpladeGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = model.base_model
            self.transform = head.transform
            self.weight = head.weight
            self.bias = head.bias

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            batch, length, width = hidden.shape
            # As SpladeBackend.pooled: padding positions copy the first token's state, so the
            # plain max over positions is the masked max.
            positions = torch.arange(length, device=hidden.device).unsqueeze(0).expand(batch, length)
            positions = torch.where(attention_mask.bool(), positions, torch.zeros_like(positions))
            hidden = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, width))
            states = self.transform(hidden)
            blocks = [
                torch.nn.functional.linear(states, self.weight[lo : lo + VOCAB_BLOCK]).amax(dim=1)
                for lo in range(0, self.weight.shape[0], VOCAB_BLOCK)
            ]
            pooled = torch.cat(blocks, dim=1)
            if self.bias is not None:
                pooled = pooled + self.bias
            return torch.log1p(torch.relu(pooled))

    return SpladeGraph().eval()


def dense_graph(model: Any) -> Any:
    """Unit vectors `[batch, dims]` of a sentence encoder, as one torch module to export."""
    import torch

    class DenseGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    return DenseGraph().eval()


def export_graph(module: Any, tokenizer: Any, max_positions: int) -> Any:
    """`module` as an OpenVINO model with dynamic batch and length (torch.export, then convert)."""
    ov = import_openvino()
    import torch

    from sidecar.inference.models import pad_batch

    global exports
    example = [Encoded(e.ids) for e in tokenizer.encode_batch(PROBE_TEXTS[:2])]  # padded: mask used
    ids, mask = pad_batch(example, "cpu")
    batch = torch.export.Dim("batch")
    length = torch.export.Dim("length", min=2, max=max_positions)
    dims = {0: batch, 1: length}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # transformers' deprecation notes while tracing
        program = torch.export.export(
            module,
            (),
            {"input_ids": ids, "attention_mask": mask},
            dynamic_shapes={"input_ids": dims, "attention_mask": dims},
        )
        converted = ov.convert_model(program)
    exports += 1
    return converted


# --- cache -----------------------------------------------------------------------------------------
def cache_entry(kind: str, model_id: str, cache_dir: Path) -> Path | None:
    """The cache folder of this model's graph (None while a hub model is not downloaded yet)."""
    ov = import_openvino()
    import transformers

    fingerprint = model_fingerprint(model_id)
    if fingerprint is None:
        return None
    key = json.dumps(
        [EXPORT_VERSION, kind, fingerprint, ov.__version__, transformers.__version__], sort_keys=True
    )
    return cache_dir / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def save_entry(entry: Path, model: Any, meta: dict[str, Any]) -> None:
    """Write graph + metadata to a temporary folder and rename it into place (atomic for readers;
    a concurrent writer's identical entry wins)."""
    ov = import_openvino()

    tmp = entry.with_name(f".{entry.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        ov.save_model(model, tmp / "model.xml", compress_to_fp16=False)
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        os.rename(tmp, entry)
    except OSError as exc:
        if not entry.is_dir():
            log.warning(
                "cannot cache the OpenVINO graph in [%s] (%s): it is exported again next load", entry, exc
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_entry(entry: Path) -> tuple[Any, dict[str, Any]] | None:
    """The cached graph and its metadata, or None when absent or unreadable."""
    if not (entry / "meta.json").is_file():
        return None
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        return core().read_model(entry / "model.xml"), meta
    except Exception as exc:  # a damaged entry: removed, so the new export takes its place
        log.warning("removing the damaged OpenVINO cache entry [%s]: %s", entry, exc)
        shutil.rmtree(entry, ignore_errors=True)
        return None


# --- backends --------------------------------------------------------------------------------------
_core: Any = None


def core() -> Any:
    """The process's one OpenVINO core (loads run on the CPU model thread, one at a time)."""
    global _core
    if _core is None:
        ov = import_openvino()

        _core = ov.Core()
    return _core


def compile_graph(model: Any, threads: int | None) -> Any:
    """Compiled for latency (all threads on one request) in fp32: on 2 cores one sentence took
    2.0-3.1 ms against 3.6-5.7 ms with the throughput hint's two single-thread streams, and
    documents one at a time ran as fast as two at once on those streams (within noise)."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return core().compile_model(model, "CPU", config)


class OpenVinoBackend:
    """A batching-engine backend over a compiled graph: `infer` runs each group of equal-length texts
    as one request (on as many requests at once as the compiled model has streams); subclasses turn the
    `[batch, width]` output into results."""

    runtime = "openvino"

    def __init__(
        self, name: str, compiled: Any, tokenizer: Any, max_length: int, meta: dict[str, Any]
    ) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.max_positions = int(meta["max_positions"])
        self.compiled = compiled
        streams = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._requests = [compiled.create_infer_request() for _ in range(max(1, streams))]

    def tokenize(self, texts: list[str]) -> list[Encoded]:
        return [Encoded(e.ids, bool(e.overflowing)) for e in self.tokenizer.encode_batch(texts)]

    def warmup(self) -> None:
        self.infer(self.tokenize(PROBE_TEXTS))

    def infer(self, batch: list[Encoded]) -> Any:
        """`[batch, width]` float32 output: texts of one token length share a request (no padding)."""
        longest = max(len(e.ids) for e in batch)
        if longest > self.max_positions:  # torch fails on these too; OpenVINO would not say so
            raise ValueError(f"[{longest}] tokens exceed the model's [{self.max_positions}] positions")
        # Group i runs on request i mod n, once that request's previous group (i - n) is done and
        # read: each request's tensors are written only while it is idle. (OpenVINO's
        # AsyncInferQueue may write a running request's input tensors when shapes change: heap
        # corruption.)
        requests = self._requests
        groups = length_groups(batch, GROUP_TOKENS)
        rows: list[Any] = [None] * len(batch)

        def read(request: Any, group: list[int]) -> None:
            block = request.get_output_tensor(0).data[: len(group)].copy()  # the buffer is reused
            for row, index in zip(block, group, strict=True):
                rows[index] = row

        try:
            for number, group in enumerate(groups):
                request = requests[number % len(requests)]
                if number >= len(requests):
                    request.wait()
                    read(request, groups[number - len(requests)])
                ids = np.asarray([batch[i].ids for i in group], dtype=np.int64)
                request.start_async({"input_ids": ids, "attention_mask": np.ones_like(ids)})
            for number in range(max(0, len(groups) - len(requests)), len(groups)):
                request = requests[number % len(requests)]
                request.wait()
                read(request, groups[number])
        except BaseException:
            for request in requests:  # none may still run when the next batch writes its inputs
                with contextlib.suppress(Exception):
                    request.wait()
            raise
        return np.stack(rows)


def length_groups(batch: list[Encoded], budget: int) -> list[list[int]]:
    """Positions in `batch` as runs of texts with the same token length, each run at most `budget`
    tokens (a longer text runs alone): a run is one `[texts, length]` request without padding.
    Runs hold a power of two of texts: OpenVINO keeps state per input shape, and any count would
    make up to `budget / length` shapes per length (a worker's RSS 1,190 MiB against 996 MiB with
    one text per request after 10,000 titles; 1,063 MiB with powers of two)."""
    runs: list[list[int]] = []
    for index in sorted(range(len(batch)), key=lambda i: len(batch[i].ids)):
        length = len(batch[index].ids)
        last = runs[-1] if runs else None
        if last and len(batch[last[0]].ids) == length and (len(last) + 1) * length <= budget:
            last.append(index)
        else:
            runs.append([index])
    groups: list[list[int]] = []
    for run in runs:
        while run:
            size = 1 << (len(run).bit_length() - 1)  # the largest power of two that fits
            groups.append(run[:size])
            run = run[size:]
    return groups


class OpenVinoSparseBackend(OpenVinoBackend):
    def __init__(
        self, name: str, compiled: Any, tokenizer: Any, max_length: int, meta: dict[str, Any]
    ) -> None:
        super().__init__(name, compiled, tokenizer, max_length, meta)
        self.vocab: list[str] = list(meta["vocab"])

    def decode(self, batch: list[Encoded], raw: Any) -> list[SparseEmbedding]:
        from sidecar.inference.services.splade import token_maps

        rows, cols = np.nonzero(raw)
        return token_maps(self.vocab, batch, (cols, raw[rows, cols], np.bincount(rows, minlength=len(batch))))


class OpenVinoDenseBackend(OpenVinoBackend):
    def __init__(
        self, name: str, compiled: Any, tokenizer: Any, max_length: int, meta: dict[str, Any]
    ) -> None:
        super().__init__(name, compiled, tokenizer, max_length, meta)
        self.dimensions = int(meta["dimensions"])

    def decode(self, batch: list[Encoded], raw: Any) -> list[DenseEmbedding]:
        return [DenseEmbedding(v, e.truncated) for v, e in zip(raw.tolist(), batch, strict=True)]


BACKENDS: dict[str, type[OpenVinoBackend]] = {"sparse": OpenVinoSparseBackend, "dense": OpenVinoDenseBackend}


# --- loading ---------------------------------------------------------------------------------------
class _Fallback(Exception):
    """OpenVINO cannot serve this model; `torch_backend` is the torch one loaded on the way, if any."""

    def __init__(self, cause: Exception, torch_backend: Any = None) -> None:
        super().__init__(str(cause))
        self.cause, self.torch_backend = cause, torch_backend


def load_openvino(
    kind: str,
    model_id: str,
    make_torch: Callable[[], Any],
    *,
    max_length: int,
    threads: int | None = None,
    cache_dir: Path | None = None,
) -> OpenVinoBackend:
    """The OpenVINO backend, from the cached graph or a fresh export (then cached). Raises
    `ModelNotReadyError` for a model that cannot load at all, `_Fallback` when only OpenVINO fails."""
    name = f"{kind}:{model_id}"
    cache_dir = cache_dir or default_cache_dir()
    try:
        entry = cache_entry(kind, model_id, cache_dir)
        cached = read_entry(entry) if entry else None
        if cached is not None:
            graph, meta = cached
            tokenizer, _ = load_fast_tokenizer(resolve_model_path(model_id), max_length)
            return BACKENDS[kind](name, compile_graph(graph, threads), tokenizer, max_length, meta)
    except ModelNotReadyError:
        raise
    except Exception as exc:
        raise _Fallback(exc) from exc
    torch_backend = make_torch()  # ModelNotReadyError when the model cannot load at all
    try:
        module, meta = _graph_module(kind, torch_backend)
        graph = export_graph(module, torch_backend.tokenizer, int(meta["max_positions"]))
        compiled = compile_graph(graph, threads)
        _check(module, compiled, torch_backend)
        backend = BACKENDS[kind](name, compiled, torch_backend.tokenizer, max_length, meta)
        entry = entry or cache_entry(kind, model_id, cache_dir)  # a hub model is downloaded by now
        if entry is not None:
            save_entry(entry, graph, meta)
        return backend
    except Exception as exc:
        raise _Fallback(exc, torch_backend) from exc


def _graph_module(kind: str, torch_backend: Any) -> tuple[Any, dict[str, Any]]:
    """The torch module to export for a loaded torch backend, and the metadata to cache with it."""
    config = torch_backend.model.config
    if config.model_type not in EXPORTABLE:
        raise ExportUnsupported(f"model type [{config.model_type}] has no tested OpenVINO export")
    meta: dict[str, Any] = {"max_positions": int(config.max_position_embeddings)}
    if kind == "sparse":
        return splade_graph(torch_backend.model), {**meta, "vocab": torch_backend.vocab}
    return dense_graph(torch_backend.model), {**meta, "dimensions": torch_backend.dimensions}


def _check(module: Any, compiled: Any, torch_backend: Any) -> None:
    """The compiled graph reproduces the eager module on a padded batch of probe texts."""
    import torch

    from sidecar.inference.models import pad_batch

    ids, mask = pad_batch(torch_backend.tokenize(PROBE_TEXTS), "cpu")
    with torch.inference_mode():
        want = module(input_ids=ids, attention_mask=mask).float().numpy()
    got = compiled({"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    error = float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-6))
    if not error <= PROBE_TOLERANCE:
        raise ExportUnsupported(
            f"the exported graph differs from the torch model (relative error {error:.1e})"
        )


def load_cpu_backend(
    runtime: str,
    kind: str,
    model_id: str,
    make_torch: Callable[[], Any],
    *,
    max_length: int,
    threads: int | None = None,
    cache_dir: Path | None = None,
) -> Any:
    """The backend `SIDECAR_CPU_RUNTIME` asks for on CPU: `torch`; `openvino` (a typed error when it
    cannot); `auto`: OpenVINO when installed and the model exports, else torch, saying why."""
    if runtime == "torch":
        return make_torch()
    required = runtime == "openvino"
    if not available():
        if required:
            raise ModelNotReadyError("SIDECAR_CPU_RUNTIME=openvino but the openvino package is not installed")
        log.info("openvino is not installed: [%s:%s] runs on torch", kind, model_id)
        return make_torch()
    try:
        return load_openvino(
            kind, model_id, make_torch, max_length=max_length, threads=threads, cache_dir=cache_dir
        )
    except _Fallback as failed:
        if required:
            raise ModelNotReadyError(
                f"cannot run [{kind}:{model_id}] on OpenVINO (SIDECAR_CPU_RUNTIME=openvino): {failed.cause}"
            ) from failed.cause
        level = logging.INFO if isinstance(failed.cause, ExportUnsupported) else logging.WARNING
        log.log(level, "[%s:%s] runs on torch, not OpenVINO: %s", kind, model_id, failed.cause)
        return failed.torch_backend or make_torch()

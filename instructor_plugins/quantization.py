"""torch's int8 quantization of the encoder for a faster CPU path (``InstructorEncoder.load(..., quantize="int8")``).

The other int8 method is OpenVINO's (:class:`instructor_plugins.runtimes.OvTransformer`): used with
``backend="openvino"``, and tried first with ``backend`` unset where OpenVINO is installed and can run it. This
module's method runs with ``backend="torch"`` or where OpenVINO's cannot.

Every ``nn.Linear`` of the transformer becomes an :class:`Int8Linear`: weights int8 per output
channel, activations quantized at run time (torch's dynamic int8 kernels, fbgemm/oneDNN on x86),
results back in float32. Embeddings, LayerNorm, attention softmax, the pooling and the Dense head
stay float32, so the pooling the checkpoint asks for — for INSTRUCTOR the mean over the *text*
tokens only, each row with its own instruction length (:mod:`instructor_plugins.pooling`) — is
exactly the fp32 code, run on the quantized transformer's token embeddings.

Three details keep every row within cos 0.99 of fp32 (plain ``quantize_dynamic`` gave 0.84-0.91 on
short chatterbot texts with the bundled MiniLM, ONNX Runtime int8 0.97-0.98):

- **The first token of each row stays float32.** BERT's ``[CLS]`` (the "attention sink") carries
  activations ~7x larger than other tokens; dynamic quantization shares one activation scale per
  call, so that one token would coarsen every other token's quantization. Its row is computed with
  the float32 weights (1 token of ~20-30; the fp32 weights are kept beside the int8 ones).
- **Padding positions are zeroed before each int8 product.** Their hidden states are never used
  (attention and pooling mask them), but they entered the shared activation scale: in a batch of
  mixed lengths a short row's tokens were quantized on a range set by other rows' padding (a 1-token
  text fell to cos 0.988). A forward pre-hook on the transformer hands each layer the batch's
  attention mask (per thread).
- **Full 8-bit activations**, which only CPUs with AVX-512 VNNI run exactly: the AVX2 and plain
  AVX-512 kernels add pairs of int8 products in int16, so torch reduces activations to 7 bits there
  (``reduce_range``), and 7 bits miss the bound.

**Where int8 is used** (:data:`INT8_ISAS`) was decided by measurement on both x86 classes
(``benchmarks/quantize.py``; the AVX2 class emulated on an AVX-512 VNNI machine with
``ATEN_CPU_CAPABILITY=avx2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2``, which makes torch,
fbgemm and oneDNN run their AVX2 kernels). With AVX2 kernels no method met both cos >= 0.99 and >= 1.2x
fp32: one activation scale per call (7 bits) was fast but reached min cos 0.969; per-token activation
scales (each token divided by its own absolute maximum before the product) reached 0.995 but ran at
0.9x fp32, also when only the feed-forward layers got them. ONNX Runtime int8 on an AVX2 EPYC: 1.10x at
0.970. So on AVX2 (and AVX-512 without VNNI, whose kernels also need 7 bits) torch's int8 is refused
(:class:`Int8Unsupported`, one line that says why). On AVX2 the int8 method is ONNX Runtime's with per-token
activation scales (:mod:`instructor_plugins.ort_int8`, measured on a real AVX2 EPYC: :data:`ORT_INT8_ISAS`); where
none runs, ``"auto"`` keeps fp32 (OpenVINO's with ``backend`` unset where it is installed, the faster exact path).

At load a fixed probe batch is embedded in fp32 and in int8 (:func:`probe_check`); below
:data:`MIN_PROBE_COS` the int8 model is not used either. The result (CPU class, method, probe
cosine, or why fp32 was kept) is ``InstructorEncoder.quantization`` and in ``/info``.

CPU only. On CUDA the fast path is bf16, the default there. Run with ``OMP_WAIT_POLICY=PASSIVE``
(Serve replicas do by default): the int8 kernels and the float32 first-token product alternate
between thread pools, and spinning OpenMP threads made int8 slower than fp32 on a busy machine.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

__all__ = [
    "INT8_ISAS",
    "MIN_PROBE_COS",
    "ORT_INT8_ISAS",
    "QUANTIZE_CHOICES",
    "Int8Linear",
    "Int8Unsupported",
    "Quantization",
    "Quantize",
    "check_quantize",
    "cpu_description",
    "cpu_flags",
    "cpu_isa",
    "dequantize",
    "method_name",
    "ort_int8_runs",
    "probe_check",
    "quantize_int8",
    "torch_int8_runs",
    "unsupported_reason",
]

logger = logging.getLogger(__name__)

Quantize = Literal["int8", "auto"]
QUANTIZE_CHOICES: tuple[str, ...] = ("int8", "auto")
"""Valid values of ``quantize`` (``None`` means no quantization; ``"auto"``: int8 where it keeps its bound on this
CPU, else float32)."""

MIN_PROBE_COS = 0.99
"""The smallest per-row cosine to fp32 that the load-time probe accepts (the bound the README promises)."""


@dataclass(frozen=True)
class Int8Method:
    """How int8 runs on one CPU class, and what it measured there (``benchmarks/quantize.py``)."""

    activation_bits: int
    """8, or 7 where the kernels add int8 products in int16 (``reduce_range``)."""
    speedup: float
    """Texts/s against fp32 on the 2-core machines of this project (bundled MiniLM, 1,024 short texts)."""
    min_cos: float
    """Smallest per-row cosine to fp32 on the same texts."""


INT8_ISAS: dict[str, Int8Method] = {
    "avx512_vnni": Int8Method(activation_bits=8, speedup=1.43, min_cos=0.9954),
}
"""The CPU classes where int8 is used, each with its method and what it measured (``benchmarks/quantize.py``, 1,024
texts, AMD EPYC with AVX-512 VNNI, 2 vCPUs, two quiet runs: 1.43x and 1.57x fp32 at min cos 0.9954). Elsewhere
``quantize="int8"`` raises and ``"auto"`` keeps fp32: on AVX2 and plain AVX-512 no int8 method met the bound at a
gain worth having (module docstring), and ARM was not measured."""


class Int8Unsupported(ValueError):
    """int8 would not keep its bound here (CPU class or the load-time probe); the message says why."""


@dataclass(frozen=True)
class Quantization:
    """What ``quantize=`` did at load: reported by ``InstructorEncoder.quantization`` and ``/info``."""

    requested: str
    """``"int8"`` or ``"auto"``."""
    isa: str
    """The CPU class of the int8 kernels (:func:`cpu_isa`)."""
    method: str
    """``"torch int8, per-token 8-bit activations"`` and the like, or ``"float32"`` when ``auto`` kept fp32."""
    probe_min_cos: float | None
    """Smallest per-row cosine of the probe batch to fp32 (None: not probed, int8 not tried here)."""
    reason: str = ""
    """Why ``auto`` kept fp32 (empty when int8 is used)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields."""
        return asdict(self)


def check_quantize(quantize: str | None, device: torch.device, dtype: torch.dtype) -> str | None:
    """Validate a ``quantize`` option against the device and dtype it would run with.

    Args:
        quantize: ``None`` (no quantization) or one of :data:`QUANTIZE_CHOICES`.
        device: the encoder's device.
        dtype: the encoder's resolved dtype.

    Returns:
        ``quantize`` (``None`` or a valid choice).

    Raises:
        ValueError: an unknown value, a non-CPU device, or a dtype other than float32; the message
            names the bad value and the valid choices.
    """
    if quantize is None:
        return None
    if quantize not in QUANTIZE_CHOICES:
        raise ValueError(f"unknown quantize {quantize!r}; valid: {list(QUANTIZE_CHOICES)} or None")
    if device.type != "cpu":
        raise ValueError(
            f"quantize={quantize!r} runs on CPU only, got device {str(device)!r}; valid devices: ['cpu'] "
            "(on CUDA use the default bf16 instead)"
        )
    if dtype != torch.float32:
        raise ValueError(
            f"quantize={quantize!r} quantizes a float32 model, got dtype {str(dtype).removeprefix('torch.')!r}; "
            "valid dtypes with quantize: ['float32'] (or leave dtype unset)"
        )
    return quantize


def _cpuinfo_field(name: str) -> str:
    """The first ``name`` line of /proc/cpuinfo (empty when there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_flags() -> set[str]:
    """This CPU's feature flags (``/proc/cpuinfo``; empty where there is none)."""
    return set(_cpuinfo_field("flags").split())


def cpu_description() -> str:
    """The CPU's model name, its int8 kernel class (:func:`cpu_isa`) and logical CPUs, for benchmark output."""
    return f"{_cpuinfo_field('model name') or 'unknown CPU'} ({cpu_isa()} int8 kernels, {os.cpu_count()} logical CPUs)"


def cpu_isa(
    flags: set[str] | None = None, env: dict[str, str] | None = None, torch_capability: str | None = None
) -> str:
    """The class of x86 int8 kernels torch runs here: ``"avx512_vnni"``, ``"avx512"``, ``"avx2"`` or ``"other"``.

    From the CPU's flags, lowered by what torch and its kernel libraries are told to use
    (``ATEN_CPU_CAPABILITY``, ``FBGEMM_ENABLE_INSTRUCTIONS``, ``ONEDNN_MAX_CPU_ISA``: set them to ``avx2`` /
    ``AVX2`` to run the AVX2 kernels on a bigger CPU). AVX-VNNI without AVX-512 counts as AVX2: fbgemm's VNNI
    kernels need AVX-512. The arguments default to this machine and process (tests pass others).
    """
    flags = cpu_flags() if flags is None else flags
    env = dict(os.environ) if env is None else env
    capability = torch.backends.cpu.get_cpu_capability() if torch_capability is None else torch_capability
    if "avx2" not in flags:
        return "other"
    limits = [env.get("FBGEMM_ENABLE_INSTRUCTIONS", ""), env.get("ONEDNN_MAX_CPU_ISA", ""), capability]
    if any(limit.upper().startswith("AVX2") for limit in limits) or "avx512f" not in flags:
        return "avx2"
    return "avx512_vnni" if "avx512_vnni" in flags else "avx512"


def _quantized_engine() -> str:
    """The x86 int8 kernel library of this torch build."""
    supported = torch.backends.quantized.supported_engines
    for engine in ("x86", "fbgemm"):
        if engine in supported:
            return engine
    raise Int8Unsupported(f"this torch build has no x86 int8 CPU kernels; supported engines: {supported}")


class Int8Linear(nn.Module):
    """A ``nn.Linear`` with int8 weights (per output channel) and dynamically quantized activations.

    On ``(batch, seq, features)`` inputs the first position of each row is computed in float32
    with the original weights (see the module docstring); every other position in int8.

    Args:
        linear: the float32 layer to replace (its weights are kept for the first position).
        reduce_range: quantize activations to 7 bits (what x86 kernels without VNNI need).
        mask: where :func:`quantize_int8`'s hook keeps the batch's attention mask (``.value``, ``(batch, seq,
            1)`` float); positions it marks 0 are zeroed before the int8 product.
    """

    def __init__(self, linear: nn.Linear, *, reduce_range: bool, mask: threading.local | None = None) -> None:
        super().__init__()
        self._mask = mask
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = nn.Parameter(linear.weight.detach().float(), requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().float(), requires_grad=False)
        self.reduce_range = reduce_range
        scale = (self.weight.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
        with warnings.catch_warnings():  # torch >= 2.12 marks quantized tensor creation deprecated (still shipped)
            warnings.simplefilter("ignore")
            qweight = torch.quantize_per_channel(
                self.weight, scale, torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8
            )
            self._packed = torch.ops.quantized.linear_prepack(qweight, self.bias)

    def _int8(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x.contiguous(), self._packed, reduce_range=self.reduce_range)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ W.T + b`` with int8 weights; the first position of 3-d inputs in float32, padding zeroed."""
        x = x.float()
        if x.dim() != 3 or x.shape[1] < 2:
            return self._int8(x)
        first = nn.functional.linear(x[:, 0].contiguous(), self.weight, self.bias).unsqueeze(1)
        rest = x[:, 1:]
        mask = getattr(self._mask, "value", None)
        if mask is not None and mask.shape[:2] == x.shape[:2]:
            rest = rest * mask[:, 1:]  # padding outputs become the bias: finite, and masked downstream
        return torch.cat([first, self._int8(rest)], dim=1)

    def to_linear(self) -> nn.Linear:
        """The float32 layer this one replaced."""
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(self.weight)
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear.eval()

    def extra_repr(self) -> str:
        """Shapes and the activation range, for ``print(module)``."""
        return f"in_features={self.in_features}, out_features={self.out_features}, reduce_range={self.reduce_range}"


def _replace(encoder: nn.Module, kind: type[nn.Module], make: Callable[[Any], nn.Module]) -> int:
    found = [(name, m) for name, m in encoder.named_modules() if type(m) is kind]
    for name, module in found:
        parent, _, attr = name.rpartition(".")
        setattr(encoder.get_submodule(parent) if parent else encoder, attr, make(module))
    return len(found)


def quantize_int8(encoder: nn.Module, isa: str | None = None) -> nn.Module:
    """Replace every ``nn.Linear`` of ``encoder`` by an :class:`Int8Linear`, in place; return ``encoder``.

    The module must be in eval mode, on CPU, in float32.

    Raises:
        Int8Unsupported: the CPU class ``isa`` (default :func:`cpu_isa`) is not in :data:`INT8_ISAS`.
    """
    isa = cpu_isa() if isa is None else isa
    if isa not in INT8_ISAS:
        raise Int8Unsupported(f"{unsupported_reason(isa)}: use quantize=None, or 'auto' to fall back to float32")
    engine = _quantized_engine()
    if torch.backends.quantized.engine != engine:
        torch.backends.quantized.engine = engine
    reduce_range = INT8_ISAS[isa].activation_bits < 8
    mask = threading.local()
    count = _replace(encoder, nn.Linear, lambda linear: Int8Linear(linear, reduce_range=reduce_range, mask=mask))

    def keep_mask(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        attention_mask = kwargs.get("attention_mask")
        mask.value = None if attention_mask is None else attention_mask.to(torch.float32).unsqueeze(-1)

    encoder._int8_mask_hook = encoder.register_forward_pre_hook(keep_mask, with_kwargs=True)  # type: ignore[assignment]
    logger.info(
        "quantized %d Linear layers to int8 (%s kernels, %s, reduce_range=%s)", count, engine, isa, reduce_range
    )
    return encoder


ORT_INT8_ISAS: dict[str, Int8Method] = {
    "avx2": Int8Method(activation_bits=8, speedup=1.45, min_cos=0.9972),
}
"""The CPU classes where ``quantize=`` with ``backend`` unset picks ONNX Runtime's per-token int8
(:mod:`instructor_plugins.ort_int8`) when neither OpenVINO's nor torch's int8 runs, with what it measured there
(``benchmarks/quantize.py``, 1,024 texts, AMD EPYC with AVX2, no VNNI, 2 vCPUs, a noisy machine: 1.29x, 1.35x, 1.55x
and 1.70x torch fp32 in four runs, median 1.45x; 1.01-1.21x ONNX Runtime fp32; min cos 0.9972, probe 0.9957).
``backend="onnx", quantize="int8"`` runs it on any CPU, checked by the load-time probe."""


def ort_int8_runs() -> bool:
    """Whether ONNX Runtime's per-token int8 is the method picked on this CPU class (:data:`ORT_INT8_ISAS`)."""
    return cpu_isa() in ORT_INT8_ISAS


def torch_int8_runs() -> bool:
    """Whether torch's int8 method is used on this CPU class (:data:`INT8_ISAS`; its load-time probe may refuse)."""
    return cpu_isa() in INT8_ISAS


def unsupported_reason(isa: str) -> str:
    """Why int8 is not used on CPU class ``isa`` (one line)."""
    if isa in ("avx2", "avx512"):
        hint = (
            "; ONNX Runtime's per-token int8 keeps it here: backend='onnx' (pip install \"instructor-plugins[onnx]\")"
            if isa in ORT_INT8_ISAS
            else ""
        )
        return (
            f"int8 is not used on this CPU class ({isa}: its int8 kernels need 7-bit activations): torch's int8 "
            "did not keep cos >= 0.99 to float32 at >= 1.2x its speed there (see instructor_plugins.quantization)"
            + hint
        )
    return f"int8 was not measured on this CPU class ({isa!r}; int8 runs on: {sorted(INT8_ISAS)})"


def dequantize(encoder: nn.Module) -> nn.Module:
    """Put the float32 ``nn.Linear`` layers back in place of every :class:`Int8Linear`; return ``encoder``."""
    _replace(encoder, Int8Linear, lambda layer: layer.to_linear())
    hook = getattr(encoder, "_int8_mask_hook", None)
    if hook is not None:
        hook.remove()
        del encoder._int8_mask_hook
    return encoder


#: Real short texts of the kinds that stress int8 most (a few words, a greeting, numbers, code), half with an
#: instruction: the load-time probe.
PROBE = [
    ("Represent the question for retrieving supporting answers: ", "What is AI?"),
    ("", "Hi."),
    ("Represent the sentence: ", "The cat sat on the mat, and the dog barked at the mailman twice."),
    ("", "I am doing well, thank you."),
    ("Represent the document for retrieval: ", "a river bank"),
    ("", "Call 555-0199 before 6 pm on 12/24."),
    ("Represent the code: ", "def add(a, b): return a + b"),
    ("", "Yes"),
]


def probe_check(encode: Callable[[Sequence[str], Sequence[str]], np.ndarray], reference: np.ndarray) -> float:
    """Smallest per-row cosine between ``encode``'s vectors for :data:`PROBE` and ``reference`` (fp32's)."""
    texts, instructions = [t for _, t in PROBE], [i for i, _ in PROBE]
    got = encode(texts, instructions)
    cos = np.sum(got * reference, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(reference, axis=1))
    return float(cos.min())


def method_name(isa: str) -> str:
    """A readable name of the int8 method used on CPU class ``isa``."""
    return f"torch dynamic int8, {INT8_ISAS[isa].activation_bits}-bit activations, first token float32"

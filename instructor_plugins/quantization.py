"""int8 quantization of the encoder for a faster CPU path (``InstructorEncoder.load(..., quantize="int8")``).

Every ``nn.Linear`` of the transformer becomes an :class:`Int8Linear`: weights int8 per output
channel, activations quantized at run time (torch's dynamic int8 kernels, fbgemm/oneDNN on x86,
qnnpack on ARM), results back in float32. Embeddings, LayerNorm, attention softmax, the pooling and
the Dense head stay float32, so the INSTRUCTOR pooling — the mean over the *text* tokens only, each
row with its own instruction length (:mod:`instructor_plugins.pooling`) — is exactly the fp32 code,
run on the quantized transformer's token embeddings.

Two details keep every row within cos 0.99 of fp32 (plain ``quantize_dynamic`` gave 0.84-0.91 on
short chatterbot texts with the bundled MiniLM, ONNX Runtime int8 0.98):

- **The first token of each row stays float32.** BERT's ``[CLS]`` (the "attention sink") carries
  activations ~7x larger than other tokens; dynamic quantization shares one activation scale per
  call, so that one token would coarsen every other token's quantization. Its row is computed with
  the float32 weights (1 token of ~20-30; the fp32 weights are kept beside the int8 ones).
- **Full 8-bit activations on CPUs with VNNI** (torch's default reduces them to 7 bits to avoid
  int16 overflow in the older AVX2 kernels; with VNNI there is none).

Why torch and not ONNX Runtime int8: measured in ``benchmarks/quantize.py`` (figures in the README,
"Faster CPU encoding"); beside speed, torch needs no export step, no extra dependency and no second
runtime, quantizes any checkpoint :meth:`~instructor_plugins.model.InstructorEncoder.load` reads,
and lets the first token stay float32.

CPU only. On CUDA the fast path is bf16, the default there. Run with ``OMP_WAIT_POLICY=PASSIVE``
(Serve replicas do by default): the int8 kernels and the float32 first-token product alternate
between thread pools, and spinning OpenMP threads made int8 slower than fp32 on a busy machine.
"""

from __future__ import annotations

import logging
import warnings
from typing import Literal

import torch
from torch import nn

__all__ = ["QUANTIZE_CHOICES", "Int8Linear", "Quantize", "check_quantize", "quantize_int8"]

logger = logging.getLogger(__name__)

Quantize = Literal["int8"]
QUANTIZE_CHOICES: tuple[str, ...] = ("int8",)
"""Valid values of ``quantize`` (``None`` means no quantization)."""


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


def _quantized_engine() -> str:
    """Pick the int8 kernel library this CPU supports (x86/fbgemm, else qnnpack on ARM)."""
    supported = torch.backends.quantized.supported_engines
    for engine in ("x86", "fbgemm", "qnnpack"):
        if engine in supported:
            return engine
    raise RuntimeError(f"this torch build has no int8 CPU kernels; supported engines: {supported}")


def _cpu_has_vnni() -> bool:
    """Whether the CPU has AVX-512 VNNI or AVX-VNNI (int8 dot products without int16 overflow)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
    except OSError:
        pass
    return False


class Int8Linear(nn.Module):
    """A ``nn.Linear`` with int8 weights (per output channel) and dynamically quantized activations.

    On ``(batch, seq, features)`` inputs the first position of each row is computed in float32
    with the original weights (see the module docstring); every other position in int8.

    Args:
        linear: the float32 layer to replace (its weights are kept for the first position).
        reduce_range: quantize activations to 7 bits (needed by x86 kernels without VNNI).
    """

    def __init__(self, linear: nn.Linear, *, reduce_range: bool) -> None:
        super().__init__()
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
        """``x @ W.T + b`` with int8 weights; the first position of 3-d inputs in float32."""
        x = x.float()
        if x.dim() != 3 or x.shape[1] < 2:
            return self._int8(x)
        first = nn.functional.linear(x[:, 0].contiguous(), self.weight, self.bias).unsqueeze(1)
        return torch.cat([first, self._int8(x[:, 1:])], dim=1)

    def extra_repr(self) -> str:
        """Shapes and the activation range, for ``print(module)``."""
        return f"in_features={self.in_features}, out_features={self.out_features}, reduce_range={self.reduce_range}"


def quantize_int8(encoder: nn.Module) -> nn.Module:
    """Replace every ``nn.Linear`` of ``encoder`` by an :class:`Int8Linear`, in place; return ``encoder``.

    The module must be in eval mode, on CPU, in float32.
    """
    engine = _quantized_engine()
    if torch.backends.quantized.engine != engine:
        torch.backends.quantized.engine = engine
    reduce_range = engine in ("x86", "fbgemm") and not _cpu_has_vnni()
    linears = [(name, m) for name, m in encoder.named_modules() if type(m) is nn.Linear]
    for name, linear in linears:
        parent, _, attr = name.rpartition(".")
        setattr(
            encoder.get_submodule(parent) if parent else encoder, attr, Int8Linear(linear, reduce_range=reduce_range)
        )
    logger.info("quantized %d Linear layers to int8 (%s kernels, reduce_range=%s)", len(linears), engine, reduce_range)
    return encoder

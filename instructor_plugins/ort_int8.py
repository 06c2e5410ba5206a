"""int8 for x86 CPUs without VNNI: the ONNX export with per-token activation scales, run by ONNX Runtime.

``InstructorEncoder.load(..., backend="onnx", quantize="int8")``, and the method ``quantize=`` picks on the CPU
classes in :data:`ORT_INT8_ISAS` (AVX2). OpenVINO's int8 quantizes activations at run time only with VNNI, and
torch's needs 7-bit activations on these CPUs, which missed cos 0.99 (:mod:`instructor_plugins.quantization`).
This one rewrites the exported graph (``onnx`` and ``numpy`` only; no calibration framework) so that each Linear
layer of the transformer (a ``MatMul`` with a constant weight) runs as ONNX Runtime's ``MatMulInteger``:

- **Per-token activation scales**: each token's row is divided by its own absolute maximum / 127 and rounded to 8
  bits (unsigned, zero point 128), so a token with large activations (BERT's ``[CLS]``) or a padding row never
  coarsens another token's quantization, as one scale per batch (ONNX Runtime's ``quantize_dynamic``) does.
- **SmoothQuant** (Xiao et al. 2023, arXiv 2211.10438): a few channels of the hidden states are far larger than
  the rest; each input channel ``j`` is divided by ``c_j = amax_j ** alpha / wmax_j ** (1 - alpha)`` and the weight's
  row ``j`` multiplied by it (the product is unchanged), moving the outliers into the weights. ``amax_j``: the
  channel's largest ``|x|`` on bundled calibration text (:data:`CALIBRATION_FILE`) run through the float32 export.
- **7-bit weights** (per output channel): without VNNI, x86 int8 kernels add pairs of ``uint8 x int8`` products in
  int16 (``vpmaddubsw``), which saturates above 32,767; ``255 * 63 * 2`` cannot.
- **The first token stays float32** (its own ``MatMul`` with the float32 weights): BERT's ``[CLS]`` carries the
  attention sink's outlier channels, and every other token attends to it.

The Linear layers that read the same input (query, key and value) share one quantization: the tokens as rows,
ONNX Runtime's ``QuantizeLinear`` with one scale per row (divide, round, shift and saturate in one pass), then a
``MatMulIntegerToFloat`` per layer (int8 product, per-column weight scale) followed by the per-token scale; the
first token's float32 row is concatenated in front. Graph version 4 computes what version 1 did (eight elementwise
nodes per product, a ``Split`` of the fused Q/K/V product) to the bit; with the float32 export it starts from now
without softmax's NaN guards (:mod:`instructor_plugins.onnx_graph`) it runs 1.35-1.39x version 1 on an AVX-512 VNNI
EPYC (``results/quantization.md``).

Measured on an AMD EPYC with AVX2 (no AVX-512, no VNNI), 2 vCPUs, the bundled MiniLM, 1,024 real short texts
(``benchmarks/quantize.py``): min cos 0.9972 to float32 (probe 0.9957), 1.29-1.70x torch float32 and 1.01-1.21x ONNX
Runtime float32 over four runs of a noisy machine (:data:`~instructor_plugins.quantization.ORT_INT8_ISAS`,
``results/quantization.md``). The parts, measured alone: per-token scales without the other two reached min cos
0.983 (probe 0.981); one scale per call with both (alpha 0.5), 0.988.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CALIBRATION_FILE",
    "CALIBRATION_INSTRUCTIONS",
    "GRAPH_VERSION",
    "SMOOTH_ALPHA",
    "WEIGHT_BITS",
    "calibration_feeds",
    "calibration_texts",
    "channel_maxima",
    "int8_path",
    "linear_matmuls",
    "quantize_per_token",
]

SMOOTH_ALPHA = 0.3
"""SmoothQuant's migration strength (0: none, 1: all of the activations' range into the weights). Chosen on a sweep of
0.3, 0.5 and 0.7 (``results/quantization.md``): 0.3 gave the largest smallest cosine, on the benchmark's texts (0.9972)
and on the load-time probe (0.9957)."""

WEIGHT_BITS = 7
"""Bits of the int8 weights (symmetric, per output channel): 7 keeps ``uint8 x int8`` pair sums inside int16."""

CALIBRATION_FILE = "data/calibration.json"
"""Bundled real text (chatterbot questions, BSD-3-Clause) whose activations set SmoothQuant's channel ranges."""

CALIBRATION_INSTRUCTIONS = (
    "Represent the Wikipedia question for retrieving supporting documents: ",
    "Represent the document for retrieval: ",
    "Represent a Tweet sentence for classification: ",
)
"""Instructions the calibration texts take in turn with none (from INSTRUCTOR's MTEB table, Apache-2.0)."""

_EPS = 1e-12


def calibration_texts() -> list[str]:
    """The bundled calibration texts (96 short questions of every length, see the file's ``_source``)."""
    text = resources.files("instructor_plugins").joinpath(CALIBRATION_FILE).read_text("utf-8")
    return list(json.loads(text)["texts"])


GRAPH_VERSION = 4
"""Bumped whenever :func:`quantize_per_token` writes a different graph, so a cached one is not reused."""


def calibration_feeds(tokenize: Callable[[list[str], list[str]], Any], batch_size: int = 16) -> list[dict[str, Any]]:
    """The export's inputs for the calibration texts, as ``tokenize`` (``InstructorEncoder.tokenize``) makes them.

    Each text goes with no instruction or one of :data:`CALIBRATION_INSTRUCTIONS`, in turn.
    """
    texts = calibration_texts()
    prompts = ["", *CALIBRATION_INSTRUCTIONS]
    feeds = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        batch = tokenize(chunk, [prompts[(start + i) % len(prompts)] for i in range(len(chunk))])
        feeds.append({"input_ids": batch.input_ids.numpy(), "attention_mask": batch.attention_mask.numpy()})
    return feeds


def int8_path(exported: Path, alpha: float = SMOOTH_ALPHA, weight_bits: int = WEIGHT_BITS) -> Path:
    """Where the per-token int8 model of the float32 export ``exported`` is cached (beside it)."""
    return exported.with_name(f"model.int8-per-token-v{GRAPH_VERSION}-a{alpha:g}-w{weight_bits}.onnx")


def linear_matmuls(model: Any) -> list[Any]:
    """The graph's Linear layers: ``MatMul`` nodes whose second input is a constant 2-D weight ``(in, out)``."""
    weights = {init.name: init for init in model.graph.initializer if len(init.dims) == 2}
    return [node for node in model.graph.node if node.op_type == "MatMul" and node.input[1] in weights]


def channel_maxima(path: Path, feeds: Iterable[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The largest ``|x|`` per channel at each Linear layer's input, over the real tokens of ``feeds``.

    ``feeds``: the export's inputs (``input_ids``, ``attention_mask``), as the encoder tokenizes them. Padding
    positions are left out (their hidden states are never used).
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    inputs = sorted({node.input[0] for node in linear_matmuls(model)})
    if not inputs:
        raise ValueError(f"no Linear layer (MatMul with a constant weight) found in {path}")
    for name in inputs:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    maxima: dict[str, np.ndarray] = {}
    for feed in feeds:
        real = np.asarray(feed["attention_mask"]).astype(bool)
        for name, value in zip(inputs, session.run(inputs, dict(feed)), strict=True):
            found = np.abs(value[real]).max(axis=0)
            maxima[name] = np.maximum(maxima[name], found) if name in maxima else found
    return maxima


def _smoothing(model: Any, maxima: Mapping[str, np.ndarray], alpha: float) -> dict[str, np.ndarray]:
    """SmoothQuant's factor per input channel of each Linear input (shared by the layers reading that input)."""
    from onnx import numpy_helper

    weights = {init.name: init for init in model.graph.initializer}
    wmax: dict[str, np.ndarray] = {}
    for node in linear_matmuls(model):
        rows = np.abs(numpy_helper.to_array(weights[node.input[1]])).max(axis=1)
        x = node.input[0]
        wmax[x] = np.maximum(wmax[x], rows) if x in wmax else rows
    factors = {}
    for x, amax in maxima.items():
        if not alpha:  # no smoothing
            factors[x] = np.ones_like(amax, dtype=np.float32)
            continue
        c = np.maximum(amax, 1e-5) ** alpha / np.maximum(wmax[x], 1e-5) ** (1 - alpha)
        factors[x] = (c / np.exp(np.log(c).mean())).astype(np.float32)  # geometric mean 1: scales stay moderate
    return factors


def quantize_per_token(
    src: Path,
    dst: Path,
    maxima: Mapping[str, np.ndarray],
    *,
    alpha: float = SMOOTH_ALPHA,
    weight_bits: int = WEIGHT_BITS,
    first_token_float: bool = True,
) -> int:
    """Write ``src`` (a float32 export) to ``dst`` with every Linear layer int8 as described above; returns their count.

    ``maxima``: :func:`channel_maxima` of ``src``. The file is written to a temporary name and renamed into place, so
    a reader never sees half of it.

    Raises:
        ValueError: ``src`` has no Linear layer, ``maxima`` misses one of their inputs, or ``weight_bits`` is not 2-8.
    """
    import onnx
    from onnx import helper, numpy_helper

    if not 2 <= weight_bits <= 8:
        raise ValueError(f"weight_bits must be 2-8, got {weight_bits}")
    model = onnx.load(str(src))
    linears = linear_matmuls(model)
    missing = sorted({node.input[0] for node in linears} - set(maxima))
    if not linears or missing:
        raise ValueError(f"{src}: no Linear layer" if not linears else f"no calibration maxima for {missing[:3]}")
    factors = _smoothing(model, maxima, alpha)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=17)
    weights = {init.name: init for init in model.graph.initializer}
    limit = 2 ** (weight_bits - 1) - 1
    added: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        added.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    one, zero = const("pt/one", np.array([1], np.int64)), const("pt/zero", np.array([0], np.int64))
    inv127, eps = const("pt/inv127", np.array(1 / 127, np.float32)), const("pt/eps", np.array(_EPS, np.float32))
    zp = const("pt/zp", np.array(128, np.uint8))
    one_f = const("pt/one_f", np.array(1.0, np.float32))
    end = const("pt/end", np.array([np.iinfo(np.int64).max], np.int64))
    axes = const("pt/axes", np.array([-1], np.int64)) if opset >= 18 else ""
    groups: dict[str, list[Any]] = {}  # input -> the Linear layers reading it (Q, K and V: one product for three)
    for node in linears:
        groups.setdefault(node.input[0], []).append(node)
    first_of = {id(members[0]): x for x, members in groups.items()}
    linear_ids = {id(node) for node in linears}
    nodes: list[Any] = []
    for node in model.graph.node:
        if id(node) not in linear_ids:
            nodes.append(node)
            continue
        if id(node) not in first_of:  # emitted with the first layer of its group
            continue
        x = first_of[id(node)]
        members = groups[x]
        p = f"pt/{len(nodes)}/"
        w = np.concatenate([numpy_helper.to_array(weights[m.input[1]]).astype(np.float32) for m in members], axis=1)
        smoothed = w * factors[x][:, None]
        w_scale = np.maximum(np.abs(smoothed).max(axis=0), _EPS) / limit
        w_int = np.clip(np.round(smoothed / w_scale), -limit, limit).astype(np.int8)
        width = w.shape[0]
        rest = x
        if first_token_float:  # token 0 (BERT's attention sink): float32, its own product, put in front below
            rest = p + "rest"
            nodes += [
                helper.make_node("Slice", [x, zero, one, one], [p + "first"]),
                helper.make_node("Slice", [x, one, end, one], [rest]),
            ]
        if alpha:
            nodes.append(helper.make_node("Mul", [rest, const(p + "inv_c", 1 / factors[x])], [p + "smooth"]))
        smooth = p + "smooth" if alpha else rest
        reduce = (
            helper.make_node("ReduceMax", [p + "abs", axes], [p + "max"], keepdims=0)
            if opset >= 18
            else helper.make_node("ReduceMax", [p + "abs"], [p + "max"], axes=[-1], keepdims=0)
        )
        nodes += [
            # one row per token: [tokens, width]; QuantizeLinear takes one scale per row along axis 0
            helper.make_node("Reshape", [smooth, const(p + "rows_shape", np.array([-1, width], np.int64))], [p + "2d"]),
            helper.make_node("Abs", [p + "2d"], [p + "abs"]),
            reduce,
            helper.make_node("Mul", [p + "max", inv127], [p + "s0"]),
            helper.make_node("Max", [p + "s0", eps], [p + "scale"]),  # per token
            helper.make_node("Shape", [p + "scale"], [p + "n"]),
            helper.make_node("Expand", [zp, p + "n"], [p + "zps"]),
            # x / scale, rounded half to even, + 128, saturated to uint8: in one pass
            helper.make_node("QuantizeLinear", [p + "2d", p + "scale", p + "zps"], [p + "u8"], axis=0),
            helper.make_node("Unsqueeze", [p + "scale", one], [p + "scale_col"]),
            helper.make_node("Shape", [smooth], [p + "lead"], end=-1),
        ]
        col = 0
        for k, member in enumerate(members):  # one product each, on the same 8-bit input (no copy by a Split)
            q, width_out = f"{p}{k}/", int(weights[member.input[1]].dims[1])
            cols = slice(col, col + width_out)
            col += width_out
            shaped = q + "shaped" if first_token_float else member.output[0]
            nodes += [
                # ONNX Runtime's int8 product with the per-column weight scale applied (a_scale 1: the per-token scale
                # is a row scale, which this op does not take; multiplied next)
                helper.make_node(
                    "MatMulIntegerToFloat",
                    [
                        p + "u8",
                        const(q + "w", np.ascontiguousarray(w_int[:, cols])),
                        one_f,
                        const(q + "w_scale", w_scale[cols].astype(np.float32)),
                        zp,
                    ],
                    [q + "cols"],
                    domain="com.microsoft",
                ),
                helper.make_node("Mul", [q + "cols", p + "scale_col"], [q + "rows"]),
                helper.make_node(
                    "Concat", [p + "lead", const(q + "width", np.array([width_out], np.int64))], [q + "shape"], axis=0
                ),
                helper.make_node("Reshape", [q + "rows", q + "shape"], [shaped]),
            ]
            if first_token_float:
                nodes += [
                    helper.make_node("MatMul", [p + "first", const(q + "w_f32", w[:, cols].copy())], [q + "first_out"]),
                    helper.make_node("Concat", [q + "first_out", shaped], [member.output[0]], axis=1),
                ]
    used = {name for node in nodes for name in node.input}
    kept = [init for init in [*model.graph.initializer, *added] if init.name in used]  # float weights now unread
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".int8-", suffix=".onnx")
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.chmod(tmp, 0o644)  # as the float32 export (mkstemp makes it private)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return len(linears)

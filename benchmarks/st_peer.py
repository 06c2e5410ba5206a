"""sentence-transformers' CPU backends as a benchmark peer, run by ``benchmarks/encode.py`` in the peers venv.

sentence-transformers' ONNX and OpenVINO backends need ``optimum`` (onnxruntime / openvino), which pins
an older ``transformers`` than this project's, so they live in the peers venv (``make bench-peers`` builds
it) and run in this child process. It reads one JSON request per stdin line and answers one JSON line:

- ``{"cmd": "setup", "model": DIR, "texts": FILE, "prompt": STR, "batch_size": N, "isa": STR, "out": DIR}``:
  loads every backend (torch, onnx, onnx qint8 for ``isa``, openvino at its default precision and at f32,
  openvino qint8) and warms it up;
  answers ``{"ready": [names], "skipped": {name: reason}}``.
- ``{"cmd": "run", "name": NAME}``: encodes the texts once (or ``"texts": [...]`` given inline), writes the
  vectors to ``OUT/NAME.npy``; answers ``{"seconds": S, "vectors": PATH}``.

The quantized exports are made the way sentence-transformers documents them:
``export_dynamic_quantized_onnx_model(model, isa, ...)`` (ONNX Runtime dynamic int8 with the CPU's config)
and ``export_static_quantized_openvino_model`` (OpenVINO static int8; calibrated on the benchmark's own
texts, written as a local dataset, since the default GLUE calibration set is on the Hugging Face Hub).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np


def _calibration_dir(texts: list[str], out: Path) -> Path:
    folder = out / "calibration"
    folder.mkdir(parents=True, exist_ok=True)
    import csv

    with (folder / "train.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence"])
        writer.writerows([t] for t in texts[:300])
    return folder


def setup(request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    out = Path(request["out"])
    work = out / "model"
    if not work.exists():
        shutil.copytree(request["model"], work)  # the exports are written beside the model
    texts = Path(request["texts"]).read_text(encoding="utf-8").split("\n\x00\n")
    models: dict[str, Any] = {}
    skipped: dict[str, str] = {}

    def attempt(name: str, build: Any) -> None:
        try:
            models[name] = build()
            models[name].encode(texts[:64], prompt=request["prompt"], batch_size=request["batch_size"])
        except Exception as exc:  # noqa: BLE001 - a peer that cannot run is reported, not fatal
            traceback.print_exc(file=sys.stderr)
            skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]

    attempt("st torch", lambda: SentenceTransformer(str(work), device="cpu"))
    attempt("st onnx", lambda: SentenceTransformer(str(work), device="cpu", backend="onnx"))
    isa = request["isa"]

    def onnx_qint8() -> Any:
        export_dynamic_quantized_onnx_model(models["st onnx"], isa, str(work))
        name = f"onnx/model_qint8_{isa}.onnx"
        return SentenceTransformer(str(work), device="cpu", backend="onnx", model_kwargs={"file_name": name})

    if "st onnx" in models:
        attempt(f"st onnx qint8 ({isa})", onnx_qint8)
    attempt("st openvino", lambda: SentenceTransformer(str(work), device="cpu", backend="openvino"))
    # OpenVINO's CPU default precision is bf16 where the CPU has it (AVX-512 BF16, AMX): not the fp32 model.
    f32 = {"ov_config": {"INFERENCE_PRECISION_HINT": "f32"}}
    attempt(
        "st openvino f32",
        lambda: SentenceTransformer(str(work), device="cpu", backend="openvino", model_kwargs=f32),
    )

    def openvino_qint8() -> Any:
        from sentence_transformers import export_static_quantized_openvino_model

        data = _calibration_dir(texts, out)
        # OpenVINO's quantizer rewrites the model it is given in place: give it a fresh one, not the timed one
        fresh = SentenceTransformer(str(work), device="cpu", backend="openvino")
        export_static_quantized_openvino_model(
            fresh,
            None,
            str(work),
            dataset_name=str(data),
            dataset_config_name="default",
            dataset_split="train",
            column_name="sentence",
        )
        name = "openvino/openvino_model_qint8_quantized.xml"
        return SentenceTransformer(str(work), device="cpu", backend="openvino", model_kwargs={"file_name": name})

    if "st openvino" in models:
        attempt("st openvino qint8 (static)", openvino_qint8)
    return models, skipped, {**request, "texts": texts}


def main() -> None:
    replies = os.fdopen(os.dup(1), "w")  # the protocol's own stdout; library prints go to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    models: dict[str, Any] = {}
    state: dict[str, Any] = {}
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "setup":
            models, skipped, state = setup(request)
            reply: dict[str, Any] = {"ready": list(models), "skipped": skipped}
        else:
            model = models[request["name"]]
            texts = request.get("texts") or state["texts"]  # "texts": other texts, e.g. the short probe
            start = time.perf_counter()
            vectors = model.encode(texts, prompt=state["prompt"], batch_size=state["batch_size"])
            seconds = time.perf_counter() - start
            stem = request["name"].replace(" ", "_").replace("/", "_") + ("_other" if request.get("texts") else "")
            path = Path(state["out"]) / (stem + ".npy")
            np.save(path, np.asarray(vectors, dtype=np.float32))
            reply = {"seconds": seconds, "vectors": str(path)}
        print(json.dumps(reply), file=replies, flush=True)


if __name__ == "__main__":
    main()

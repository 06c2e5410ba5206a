"""A checkpoint we cannot reproduce exactly is an error at load naming the file and the field, and dtypes.

Every case edits one file of a copy of the bundled all-MiniLM-L6-v2 (weights linked, not copied). The dtype
tests run the real model in bfloat16 on CPU against float32, on real text (WordNet definitions).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from instructor_plugins.checkpoint import ModelLoadError, bundled_model_dir, read_checkpoint
from instructor_plugins.corpora import wordnet_synsets
from instructor_plugins.model import InstructorEncoder

OFFICIAL_T5 = Path(__file__).resolve().parents[1] / "fixtures" / "instructor_t5" / "official"
POOLING_LEGACY = {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}


def bundled_copy(root: Path) -> Path:
    """A copy of the bundled model whose small files may be edited; the weights are a symlink."""
    source = bundled_model_dir()
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("model.safetensors"))
    (root / "model.safetensors").symlink_to(source / "model.safetensors")
    return root


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")


def modules(*entries: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"idx": i, "name": str(i), "path": path, "type": kind} for i, (path, kind) in enumerate(entries)]


ST = "sentence_transformers.models."
TRANSFORMER = ("", ST + "Transformer")
POOLING = ("1_Pooling", ST + "Pooling")


def _weighted_layer_pooling(root: Path) -> None:
    write_json(root / "modules.json", modules(TRANSFORMER, ("1_Pooling", ST + "WeightedLayerPooling")))


def _unknown_mode(root: Path) -> None:
    write_json(root / "1_Pooling" / "config.json", {"embedding_dimension": 384, "pooling_mode": ["mean", "attention"]})


def _unknown_field(root: Path) -> None:
    write_json(root / "1_Pooling" / "config.json", POOLING_LEGACY | {"pooling_mode_attention_tokens": True})


def _missing_pooling_config(root: Path) -> None:
    (root / "1_Pooling" / "config.json").unlink()


def _bad_include_prompt(root: Path) -> None:
    write_json(root / "1_Pooling" / "config.json", POOLING_LEGACY | {"include_prompt": "yes"})


def _residual_dense(root: Path) -> None:
    write_json(root / "modules.json", modules(TRANSFORMER, POOLING, ("2_Dense", ST + "Dense")))
    dense = {"in_features": 384, "out_features": 384, "bias": True, "use_residual": True}
    write_json(root / "2_Dense" / "config.json", dense)


def _dense_activation(root: Path) -> None:
    write_json(root / "modules.json", modules(TRANSFORMER, POOLING, ("2_Dense", ST + "Dense")))
    dense = {"in_features": 384, "out_features": 8, "activation_function": "my.pkg.Swish"}
    write_json(root / "2_Dense" / "config.json", dense)


def _pooling_before_transformer(root: Path) -> None:
    write_json(root / "modules.json", modules(POOLING, TRANSFORMER))


BAD_CHECKPOINTS: dict[str, tuple[Callable[[Path], None], str]] = {
    # case: (edit, what the message must name: the file and the field or value)
    "WeightedLayerPooling": (_weighted_layer_pooling, r"modules\.json.*'sentence_transformers\.models\.WeightedLayer"),
    "unknown pooling mode": (_unknown_mode, r"1_Pooling/config\.json.*pooling_mode \['attention'\]"),
    "unknown pooling field": (_unknown_field, r"1_Pooling/config\.json.*\['pooling_mode_attention_tokens'\]"),
    "missing pooling config": (_missing_pooling_config, r"1_Pooling/config\.json is missing"),
    "include_prompt not a bool": (_bad_include_prompt, r"1_Pooling/config\.json.*include_prompt.*'yes'"),
    "residual Dense": (_residual_dense, r"2_Dense/config\.json.*use_residual"),
    "unknown Dense activation": (_dense_activation, r"2_Dense/config\.json.*'my\.pkg\.Swish'"),
    "modules out of order": (_pooling_before_transformer, r"modules\.json"),
}


@pytest.mark.parametrize("case", list(BAD_CHECKPOINTS))
def test_a_checkpoint_we_cannot_reproduce_is_refused_naming_file_and_field(tmp_path: Path, case: str) -> None:
    edit, message = BAD_CHECKPOINTS[case]
    root = bundled_copy(tmp_path / "model")
    read_checkpoint(root)  # the unedited copy reads
    edit(root)
    with pytest.raises(ModelLoadError, match=message):
        InstructorEncoder.load(root, device="cpu")


def test_custom_model_code_needs_trust_remote_code(tmp_path: Path) -> None:
    root = bundled_copy(tmp_path / "model")
    config = json.loads((root / "config.json").read_text(encoding="utf-8"))
    config |= {"model_type": "my-own-bert", "auto_map": {"AutoModel": "modeling_mine.MyModel"}}
    write_json(root / "config.json", config)
    with pytest.raises(ModelLoadError, match=r"config\.json.*trust_remote_code=True"):
        InstructorEncoder.load(root, device="cpu")


# ---------------------------------------------------------------- dtype
@pytest.fixture(scope="module")
def definitions() -> list[str]:
    if not Path("/usr/share/wordnet/data.noun").is_file():
        pytest.skip("WordNet missing: apt-get install wordnet-base")
    return [s.definition for s in wordnet_synsets("noun")[1000:1048]]


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_bf16_on_cpu_is_within_rounding_of_fp32(bundled_encoder: InstructorEncoder, definitions: list[str]) -> None:
    bf16 = InstructorEncoder.load(device="cpu", dtype="bf16")
    assert bf16.dtype == torch.bfloat16 and next(bf16.module.encoder.parameters()).dtype == torch.bfloat16
    instructions = ["", "Represent the dictionary definition for retrieval: "] * (len(definitions) // 2)
    got = bf16.encode(definitions, instructions, batch_size=16)
    want = bundled_encoder.encode(definitions, instructions, batch_size=16)
    assert got.dtype == np.float32  # pooling and output are float32 whatever the encoder's dtype
    assert cosine_rows(got, want).min() >= 0.999


def test_bf16_t5_keeps_its_dense_head_in_fp32_and_fp16_is_refused(definitions: list[str]) -> None:
    fp32 = InstructorEncoder.load(OFFICIAL_T5, device="cpu")
    bf16 = InstructorEncoder.load(OFFICIAL_T5, device="cpu", dtype="bfloat16")
    assert next(bf16.module.encoder.parameters()).dtype == torch.bfloat16
    assert [layer.weight.dtype for layer in bf16.module.dense] == [torch.float32]  # as the module docstring says
    instruction = "Represent the dictionary definition for retrieval: "
    got, want = bf16.encode(definitions, instruction), fp32.encode(definitions, instruction)
    assert cosine_rows(got, want).min() >= 0.999
    with pytest.raises(ValueError, match="float16 is refused for the T5 encoder"):
        InstructorEncoder.load(OFFICIAL_T5, device="cpu", dtype="fp16")

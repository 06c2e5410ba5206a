"""A tiny BERT embedder with the bundled model's layout, for plumbing tests of training and jobs.

:func:`build_tiny_bert` copies the bundled all-MiniLM-L6-v2 folder (tokenizer, sentence-transformers modules,
mean pooling, normalisation) and replaces its weights with a randomly initialised ``BertModel`` of hidden size
32 and 2 layers (fixed seed): the same architecture and files as the real checkpoint at ~4 MB instead of ~90 MB.
The toy recipe job (``tests/integration/test_cluster_jobs.py``) runs on it: that test checks the job's and the
report's plumbing, and every text the recipe mines, distils and evaluates costs a fraction of the real model's
time (its fixture took 93-101 s, against 112-144 s on the real model). The Ray Train tests of checkpoints and
lost nodes stay on the real model: their time is Ray Train's own (a tiny model saved ~5 s of ~55), and the
lost-node test needs steps slow enough to lose a node mid-run. Every test of numerics uses the real model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

__all__ = ["TINY_CONFIG", "build_tiny_bert"]

TINY_CONFIG = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def build_tiny_bert(out: Path, seed: int = 0) -> Path:
    """Write the tiny checkpoint to ``out`` (created) and return it."""
    import torch
    from transformers import BertConfig, BertModel

    from instructor_plugins.checkpoint import bundled_model_dir

    src = bundled_model_dir()
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("model.safetensors", "pytorch_model.bin", "*.onnx"))
    config = json.loads((src / "config.json").read_text()) | TINY_CONFIG
    torch.manual_seed(seed)
    BertModel(BertConfig(**config)).save_pretrained(str(out), safe_serialization=True)
    pooling = out / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps(json.loads(pooling.read_text()) | {"word_embedding_dimension": 32}, indent=2))
    return out

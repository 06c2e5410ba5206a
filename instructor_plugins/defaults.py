"""What a model knows about how it was trained: :class:`InstructionDefaults`.

An instruction-trained model (INSTRUCTOR, or a checkpoint finetuned here on MEDI-style data)
expects its query and document instructions; an untrained one, such as the bundled
all-MiniLM-L6-v2, embeds best with none (an instruction it never saw only shifts its vectors).
Every entry point (encoder, LangChain/LlamaIndex classes, Serve ``/info``, evals) takes its
default instructions from :func:`find_defaults`, which looks at what the checkpoint *is*, never at
its name, in this order:

1. ``instructor.json`` at the checkpoint root (written by :func:`write_defaults`);
2. sentence-transformers ``prompts`` (``{"query": ..., "document": ...}``) in
   ``config_sentence_transformers.json`` (a model that ships prompts was trained with them: E5,
   BGE, Qwen3-Embedding...);
3. an INSTRUCTOR checkpoint (:attr:`~instructor_plugins.checkpoint.CheckpointSpec.family`, from
   its files: the official package's layout, or the hub layout's model card) uses the retrieval
   instructions of the paper's examples (the defaults the old LangChain and LlamaIndex classes used);
4. otherwise: not instruction-trained, no instructions.

Every entry point can override these (``InstructorEncoder.load(..., defaults=...)``, the plugin
classes' instruction fields, ``instructor serve --query-instruction/--document-instruction``).

:func:`write_defaults` records both (1) and (2), so ``SentenceTransformer(dir).encode(texts,
prompt_name="query")`` uses the same instruction as this library.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from instructor_plugins.instructions import preset

__all__ = [
    "DEFAULTS_FILE",
    "InstructionDefaults",
    "find_defaults",
    "override_defaults",
    "read_defaults",
    "write_defaults",
]

DEFAULTS_FILE = "instructor.json"
ST_CONFIG_FILE = "config_sentence_transformers.json"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstructionDefaults:
    """How a model was trained, as far as instructions go.

    Attributes:
        instruction_trained: the model was trained with instructions (INSTRUCTOR-style); when
            False, explicit instructions still apply but are probably not what the model wants.
        query: the model's default query instruction (``""`` for none).
        document: the model's default document instruction (``""`` for none).
    """

    instruction_trained: bool
    query: str = ""
    document: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.instruction_trained, bool):
            raise TypeError(f"instruction_trained must be a bool, got {self.instruction_trained!r}")
        for name in ("query", "document"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a str, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """``{"instruction_trained", "query", "document"}``."""
        return asdict(self)

    def to_json(self) -> str:
        """The ``instructor.json`` text.

        >>> InstructionDefaults(True, "q: ", "d: ").to_json()
        '{"instruction_trained": true, "query": "q: ", "document": "d: "}'
        """
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructionDefaults:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming the valid ones."""
        valid = {"instruction_trained", "query", "document"}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ValueError(f"unknown instruction-defaults keys {unknown}; valid: {sorted(valid)}")
        if "instruction_trained" not in data:
            raise ValueError("instruction defaults need 'instruction_trained' (true or false)")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> InstructionDefaults:
        """Inverse of :meth:`to_json`.

        >>> InstructionDefaults.from_json('{"instruction_trained": false}')
        InstructionDefaults(instruction_trained=False, query='', document='')
        """
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"instruction defaults must be a JSON object, got {type(data).__name__}")
        return cls.from_dict(data)


UNTRAINED = InstructionDefaults(instruction_trained=False)


def _paper_defaults() -> InstructionDefaults:
    retrieval = preset("retrieval")
    return InstructionDefaults(True, retrieval.query, retrieval.document)


def _st_prompts(model_dir: Path) -> InstructionDefaults | None:
    path = model_dir / ST_CONFIG_FILE
    if not path.is_file():
        return None
    try:
        prompts = json.loads(path.read_text(encoding="utf-8")).get("prompts") or {}
    except (ValueError, AttributeError):
        logger.warning("ignoring unreadable %s", path)
        return None
    query, document = prompts.get("query"), prompts.get("document")
    if not isinstance(query, str) and not isinstance(document, str):
        return None
    return InstructionDefaults(
        True, query if isinstance(query, str) else "", document if isinstance(document, str) else ""
    )


def find_defaults(model_dir: Path | None, family: str | None = None) -> tuple[InstructionDefaults, str]:
    """The instruction defaults of a model and why (see the module docstring for the lookup order).

    Args:
        model_dir: the checkpoint folder (``None`` when there is none to read, e.g. a remote model).
        family: the checkpoint's family (:attr:`~instructor_plugins.checkpoint.CheckpointSpec.family`).

    Returns:
        the defaults and their source: ``"instructor.json"``, ``"ST prompts"``, ``"INSTRUCTOR layout"`` or
        ``"not instruction-trained"``.

    Raises:
        ValueError: ``instructor.json`` exists but is not valid.

    >>> find_defaults(None, "instructor")[1]
    'INSTRUCTOR layout'
    >>> find_defaults(None)
    (InstructionDefaults(instruction_trained=False, query='', document=''), 'not instruction-trained')
    """
    if model_dir is not None:
        path = Path(model_dir) / DEFAULTS_FILE
        if path.is_file():
            try:
                return InstructionDefaults.from_json(path.read_text(encoding="utf-8")), DEFAULTS_FILE
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path} is not valid instruction defaults: {exc}") from None
        prompts = _st_prompts(Path(model_dir))
        if prompts is not None:
            return prompts, "ST prompts"
    if family == "instructor":
        return _paper_defaults(), "INSTRUCTOR layout"
    return UNTRAINED, "not instruction-trained"


def read_defaults(model_dir: Path | None, family: str | None = None) -> InstructionDefaults:
    """The instruction defaults of a model (:func:`find_defaults` without the reason).

    >>> read_defaults(None, "instructor").instruction_trained
    True
    >>> read_defaults(None)
    InstructionDefaults(instruction_trained=False, query='', document='')
    """
    return find_defaults(model_dir, family)[0]


def override_defaults(
    defaults: InstructionDefaults, *, query: str | None = None, document: str | None = None
) -> InstructionDefaults:
    """``defaults`` with the given sides replaced; instructions given by the user count as instruction-trained.

    >>> override_defaults(InstructionDefaults(False), query="query: ")
    InstructionDefaults(instruction_trained=True, query='query: ', document='')
    >>> override_defaults(InstructionDefaults(False)) == InstructionDefaults(False)
    True
    """
    if query is None and document is None:
        return defaults
    return InstructionDefaults(
        True,
        defaults.query if query is None else query,
        defaults.document if document is None else document,
    )


def write_defaults(model_dir: str | Path, defaults: InstructionDefaults) -> Path:
    """Record ``defaults`` in ``instructor.json`` and as sentence-transformers ``prompts``; return the JSON path.

    Other keys of ``config_sentence_transformers.json`` are kept.
    """
    root = Path(model_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / DEFAULTS_FILE
    path.write_text(defaults.to_json() + "\n", encoding="utf-8")
    st_path = root / ST_CONFIG_FILE
    config: dict[str, Any] = {}
    if st_path.is_file():
        try:
            loaded = json.loads(st_path.read_text(encoding="utf-8"))
            config = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            logger.warning("overwriting unreadable %s", st_path)
    config["prompts"] = {"query": defaults.query, "document": defaults.document}
    config.setdefault("default_prompt_name", None)
    st_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path

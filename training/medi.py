"""MEDI-format training data: load, validate, save.

MEDI (the INSTRUCTOR paper's training set, arXiv 2212.09741) is a JSON list of rows::

    {"query": [instruction, text], "pos": [instruction, text], "neg": [instruction, text], "task_id": 7}

``task_name`` (a string) is accepted instead of, or next to, ``task_id``. Two optional fields, ours, mark
same-label tasks: ``"label"`` (the label the query and its positive share) and ``"neg_label"`` (the negative's);
with ``--mask-false-negatives`` the loss leaves in-batch texts of the row's label out of its negatives
(:mod:`training.false_negatives`).
Every row is validated;
an error names the row index and the field. ``blank_instructions=True`` empties every instruction:
the paper's "no instructions" ablation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["MediError", "MediExample", "load_medi", "parse_rows", "save_medi"]

_SIDES = ("query", "pos", "neg")


class MediError(ValueError):
    """A MEDI row is malformed; the message names the row index and the field."""


@dataclass(frozen=True)
class MediExample:
    """One training triple: (instruction, text) for the query, its positive and a hard negative.

    Attributes:
        query: ``(instruction, text)`` of the anchor.
        pos: ``(instruction, text)`` of the positive.
        neg: ``(instruction, text)`` of the hard negative.
        task: the task key (``task_name``, else ``str(task_id)``); batches never mix tasks.
        label: the label query and positive share, in a same-label task; ``None`` elsewhere.
        neg_label: the negative's label, where known.
    """

    query: tuple[str, str]
    pos: tuple[str, str]
    neg: tuple[str, str]
    task: str
    label: str | None = None
    neg_label: str | None = None

    def without_instructions(self) -> MediExample:
        """The same triple with every instruction empty (what the no-instruction ablation trains on)."""
        return replace(self, query=("", self.query[1]), pos=("", self.pos[1]), neg=("", self.neg[1]))

    def to_row(self) -> dict[str, Any]:
        """The MEDI JSON row (``task_id`` when the task key is an integer, else ``task_name``)."""
        row: dict[str, Any] = {"query": list(self.query), "pos": list(self.pos), "neg": list(self.neg)}
        row["task_id" if self.task.isdigit() else "task_name"] = int(self.task) if self.task.isdigit() else self.task
        for name in ("label", "neg_label"):
            if getattr(self, name) is not None:
                row[name] = getattr(self, name)
        return row


def _pair(row: Mapping[str, Any], field: str, index: int) -> tuple[str, str]:
    value = row.get(field)
    if value is None:
        raise MediError(f"row {index}: missing field {field!r} (need query, pos, neg and task_id or task_name)")
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise MediError(f"row {index}: field {field!r} must be a [instruction, text] pair, got {value!r:.80}")
    instruction, text = value
    if not isinstance(instruction, str) or not isinstance(text, str):
        raise MediError(f"row {index}: field {field!r} must hold two strings, got {value!r:.80}")
    if not text.strip():
        raise MediError(f"row {index}: field {field!r} has an empty text")
    return instruction, text


def _task(row: Mapping[str, Any], index: int) -> str:
    name, task_id = row.get("task_name"), row.get("task_id")
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise MediError(f"row {index}: field 'task_name' must be a non-empty string, got {name!r}")
        return name
    if task_id is None:
        raise MediError(f"row {index}: missing field 'task_id' (or 'task_name')")
    if isinstance(task_id, bool) or not isinstance(task_id, int) or task_id < 0:
        raise MediError(f"row {index}: field 'task_id' must be a non-negative int, got {task_id!r}")
    return str(task_id)


def _label(row: Mapping[str, Any], field: str, index: int) -> str | None:
    value = row.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise MediError(f"row {index}: field {field!r} must be a string (or an int), got {value!r:.80}")
    return str(value)


def parse_rows(rows: Iterable[Any], *, blank_instructions: bool = False) -> list[MediExample]:
    """Validate MEDI rows and turn them into :class:`MediExample` objects.

    Args:
        rows: dicts in the MEDI format.
        blank_instructions: replace every instruction with ``""`` (the no-instruction ablation).

    Raises:
        MediError: a row is not a dict, misses a field, or a field has the wrong shape.
    """
    out: list[MediExample] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise MediError(f"row {index}: expected an object, got {type(row).__name__}")
        query, pos, neg = (_pair(row, side, index) for side in _SIDES)
        example = MediExample(
            query=query,
            pos=pos,
            neg=neg,
            task=_task(row, index),
            label=_label(row, "label", index),
            neg_label=_label(row, "neg_label", index),
        )
        out.append(example.without_instructions() if blank_instructions else example)
    if not out:
        raise MediError("no rows: MEDI data must be a non-empty list")
    return out


def load_medi(
    source: str | os.PathLike[str],
    *,
    blank_instructions: bool = False,
    split: str = "train",
    limit: int | None = None,
) -> list[MediExample]:
    """Load MEDI data from a JSON / JSON-lines file (local or object storage) or a ``datasets`` id.

    Args:
        source: a path or URI (``s3://``, ``gs://``, ``file://``; see ``instructor_plugins.storage``) of a
            ``.json`` list (or ``.jsonl``, one row a line), a local folder written by
            ``datasets``' ``save_to_disk`` (a ``DatasetDict``, read at ``split``, or a ``Dataset``),
            or a Hugging Face ``datasets`` id such as ``"user/medi-data"`` (needs the hub).
        blank_instructions: empty every instruction (the paper's no-instruction baseline).
        split: the ``datasets`` split to read.
        limit: keep only the first ``limit`` rows.

    Raises:
        FileNotFoundError: ``source`` looks like a path but does not exist.
        MediError: a row is malformed.
    """
    from instructor_plugins.storage import is_uri, redact, resolve

    path = Path(source)
    rows: Sequence[Any]
    if is_uri(str(source)):  # object storage (s3://, gs://...) or file://, as every node of a cluster reads it
        location = resolve(str(source))
        try:
            text = location.read_bytes().decode("utf-8")
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"MEDI file not found: {redact(str(source))}") from exc
        rows = _parse_text(text, Path(location.path).suffix, redact(str(source)))
    elif path.is_file():
        rows = _parse_text(path.read_text(encoding="utf-8"), path.suffix, str(path))
    elif path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file()):
        rows = _load_from_disk(path, split)
    elif path.suffix in (".json", ".jsonl") or path.is_absolute() or str(source).startswith("."):
        raise FileNotFoundError(f"MEDI file not found: {path}")
    else:
        try:
            import datasets
        except ImportError as exc:  # pragma: no cover - datasets is in the train extra
            raise ImportError("loading a datasets id needs: pip install 'instructor-plugins[train]'") from exc
        rows = list(datasets.load_dataset(str(source), split=split))
    if limit is not None:
        rows = rows[:limit]
    return parse_rows(rows, blank_instructions=blank_instructions)


def _parse_text(text: str, suffix: str, name: str) -> list[Any]:
    """The rows of a ``.jsonl`` (one a line) or JSON-list file's text; ``name`` is for the error message."""
    if suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if not isinstance(data, list):
        raise MediError(f"{name}: expected a JSON list of rows, got {type(data).__name__}")
    return data


def _load_from_disk(path: Path, split: str) -> list[Any]:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is in the train extra
        raise ImportError("loading a save_to_disk folder needs: pip install 'instructor-plugins[train]'") from exc
    data = datasets.load_from_disk(str(path))
    if isinstance(data, datasets.DatasetDict):
        if split not in data:
            raise MediError(f"{path}: no split {split!r}; valid: {sorted(data)}")
        data = data[split]
    return list(data)


def save_medi(examples: Iterable[MediExample], path: str | os.PathLike[str]) -> Path:
    """Write examples as a MEDI JSON list; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([e.to_row() for e in examples], ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return out

from __future__ import annotations

import doctest
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("MTEB_CACHE", os.path.join(tempfile.gettempdir(), "mteb-cache-tests"))  # before mteb import

import mteb
import numpy as np
import pytest
from mteb.mocks.mock_tasks import MockClassificationTask, MockRetrievalTask, MockSTSTask
from mteb.mocks.mock_tasks.clustering import MockClusteringTask
from mteb.types import PromptType

from evals import model as evals_model
from evals.meta import BUNDLED_MODEL, get_model_meta, local_model_meta, model_metas
from evals.model import InstructorMTEBModel, load_mteb_model, model_meta
from instructor_plugins.backends import LocalBackend
from instructor_plugins.defaults import InstructionDefaults
from instructor_plugins.instructions import mteb_instructions, preset
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.testing import HashEncoder


class RecordingBackend:
    """Records the exact instruction argument of every embed call (plumbing only)."""

    def __init__(self) -> None:
        self.fake = HashEncoder(dim=8)
        self.calls: list[tuple[list[str], str | Sequence[str] | None]] = []

    def embed(self, texts: Sequence[str], instruction: str | Sequence[str] | None = None) -> np.ndarray:
        self.calls.append((list(texts), instruction))
        return self.fake.encode(list(texts), instruction)

    async def aembed(self, texts: Sequence[str], instruction: str | Sequence[str] | None = None) -> np.ndarray:
        return self.embed(texts, instruction)


def _batches(texts: list[str]) -> list[dict[str, list[str]]]:
    return [{"text": texts[:2]}, {"text": texts[2:]}]


def _wrapper(backend: object, instructions: str = "paper") -> InstructorMTEBModel:
    meta = get_model_meta("bundled")
    assert meta is not None
    return InstructorMTEBModel(backend, meta, instructions=instructions, log=None)  # type: ignore[arg-type]


def _encode(model: InstructorMTEBModel, task: str, prompt_type: PromptType | None, texts: list[str]) -> np.ndarray:
    metadata = mteb.get_task(task).metadata
    return model.encode(
        _batches(texts), task_metadata=metadata, hf_split="test", hf_subset="default", prompt_type=prompt_type
    )


def test_wrapper_passes_query_and_document_instructions_of_a_retrieval_task() -> None:
    backend = RecordingBackend()
    model = _wrapper(backend)
    texts = ["what is a counter argument", "second", "third"]
    out = _encode(model, "ArguAna", PromptType.query, texts)
    _encode(model, "ArguAna", PromptType.document, texts)
    paper = mteb_instructions("ArguAna")
    assert paper is not None
    assert [c[1] for c in backend.calls] == [paper.query, paper.document]
    assert backend.calls[0][0] == texts
    assert out.shape == (3, 8) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], backend.fake.vector(texts[0], paper.query))


def test_wrapper_passes_the_sts_instruction_for_symmetric_calls() -> None:
    backend = RecordingBackend()
    _encode(_wrapper(backend), "STSBenchmark", None, ["a", "b", "c"])
    paper = mteb_instructions("STSBenchmark")
    assert paper is not None
    assert backend.calls[0][1] == paper.query


def test_wrapper_falls_back_to_the_type_preset_for_an_unknown_task() -> None:
    backend = RecordingBackend()
    model = _wrapper(backend)
    metadata = mteb.get_task("ArguAna").metadata.model_copy(update={"name": "BrandNewRetrievalTask"})
    for side in (PromptType.query, PromptType.document):
        model.encode(
            _batches(["x", "y", "z"]), task_metadata=metadata, hf_split="test", hf_subset="default", prompt_type=side
        )
    assert [c[1] for c in backend.calls] == [preset("retrieval").query, preset("retrieval").document]
    assert model.choices[("BrandNewRetrievalTask", "query")].source == "preset"


def test_none_mode_passes_none() -> None:
    backend = RecordingBackend()
    model = _wrapper(backend, instructions="none")
    _encode(model, "ArguAna", PromptType.query, ["a", "b", "c"])
    _encode(model, "STSBenchmark", None, ["a", "b", "c"])
    assert [c[1] for c in backend.calls] == [None, None]
    assert model.mteb_model_meta.experiment_kwargs == {"instructions": "none"}


def test_repeated_texts_are_embedded_once() -> None:
    backend = RecordingBackend()
    out = _encode(_wrapper(backend), "STSBenchmark", None, ["a", "b", "a", "a"])
    assert backend.calls[0][0] == ["a", "b"]
    np.testing.assert_array_equal(out[0], out[2])


def test_dedupe_equals_plain_encoding_on_the_real_model(bundled_encoder: InstructorEncoder) -> None:
    texts = ["the cat sat", "a dog barked loudly", "the cat sat", "rain", "a dog barked loudly", "the cat sat"]
    metadata = mteb.get_task("STSBenchmark").metadata
    outs = []
    for dedupe in (True, False):
        meta = get_model_meta("bundled")
        assert meta is not None
        model = InstructorMTEBModel(LocalBackend(encoder=bundled_encoder), meta, dedupe=dedupe, log=None)
        outs.append(model.encode(_batches(texts), task_metadata=metadata, hf_split="test", hf_subset="default"))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)
    plain = bundled_encoder.encode(texts, mteb_instructions("STSBenchmark").query)  # type: ignore[union-attr]
    np.testing.assert_allclose(outs[0], plain, atol=1e-5)


def test_mock_tasks_run_through_the_wrapper(bundled_encoder: InstructorEncoder) -> None:
    model = load_mteb_model(encoder=bundled_encoder, instructions="paper", log=None)
    tasks = [MockRetrievalTask(), MockSTSTask(), MockClassificationTask(), MockClusteringTask()]
    result = mteb.evaluate(model, tasks, cache=None, co2_tracker=False, show_progress_bar=False)
    assert not result.exceptions
    scores = {r.task_name: r.get_score() for r in result.task_results}
    assert set(scores) == {t.metadata.name for t in tasks}
    assert all(np.isfinite(v) for v in scores.values())
    # mteb asked for both retrieval sides; unknown mock tasks get the preset of their type
    assert model.choices[("MockRetrievalTask", "query")].instruction == preset("retrieval").query
    assert model.choices[("MockRetrievalTask", "document")].instruction == preset("retrieval").document
    assert model.choices[("MockSTSTask", "symmetric")].instruction == preset("sts").query


def test_model_metas() -> None:
    metas = model_metas()
    for size in ("base", "large", "xl"):
        meta = metas[f"hkunlp/instructor-{size}"]
        assert meta.embed_dim == 768 and meta.max_tokens == 512 and meta.use_instructions
    assert get_model_meta(None) == get_model_meta("bundled") == metas[BUNDLED_MODEL]
    assert metas[BUNDLED_MODEL].embed_dim == 384
    assert get_model_meta("someone/other-model") is None


def test_local_model_meta_names(tmp_path: Path) -> None:
    folder = tmp_path / "my-checkpoint"
    folder.mkdir()
    assert local_model_meta(str(folder), embed_dim=64, max_tokens=128).name == "local/my-checkpoint"
    hub = local_model_meta("someone/other-model", embed_dim=None, max_tokens=None)
    assert hub.name == "someone/other-model" and hub.embed_dim is None


def test_auto_mode_follows_the_model(bundled_encoder: InstructorEncoder) -> None:
    assert load_mteb_model(encoder=bundled_encoder, log=None).instructions == "none"  # untrained
    trained = HashEncoder(defaults=InstructionDefaults(True, "q: ", "d: "))
    assert load_mteb_model(encoder=trained, log=None).instructions == "paper"
    assert load_mteb_model(encoder=trained, instructions="none", log=None).instructions == "none"


def test_meta_records_are_data_and_model_meta_adds_the_loader() -> None:
    assert get_model_meta("bundled").loader is None  # type: ignore[union-attr]
    meta = model_meta("bundled")
    assert meta is not None
    model = meta.load_model(instructions="none", log=None)
    assert isinstance(model, InstructorMTEBModel) and model.instructions == "none"


def test_bad_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="valid: \\['auto', 'paper', 'none'\\]"):
        load_mteb_model(encoder=HashEncoder(), instructions="all")


def test_doctests() -> None:
    result = doctest.testmod(evals_model)
    assert result.attempted > 0 and result.failed == 0, result  # examples ran, and passed

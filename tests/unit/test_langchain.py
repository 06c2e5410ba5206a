"""InstructorEmbeddings (LangChain): numerics on the real bundled model, plumbing with fakes."""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from instructor_plugins import plugin as plugin_module
from instructor_plugins.backends import LocalBackend
from instructor_plugins.instructions import PRESETS, preset
from instructor_plugins.langchain import InstructorEmbeddings
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.testing import HashEncoder

QUERIES = ["How do I reset my password?", "who wrote The Idiot"]
DOCS = ["Fyodor Dostoyevsky.", "Click 'Forgot password' on the login page.", "Bavarian Motor Works", ""]


@pytest.fixture(scope="module")
def emb() -> InstructorEmbeddings:
    return InstructorEmbeddings.for_task("retrieval", device="cpu", batch_size=2)


def test_query_vectors_equal_encoder_with_query_instruction(
    emb: InstructorEmbeddings, bundled_encoder: InstructorEncoder
) -> None:
    got = np.array([emb.embed_query(q) for q in QUERIES])
    want = bundled_encoder.encode(QUERIES, instruction=emb.query_instruction)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # the instruction is part of the input: without it the vectors differ
    assert not np.allclose(got, bundled_encoder.encode(QUERIES), atol=1e-3)


def test_document_vectors_equal_encoder_with_document_instruction(
    emb: InstructorEmbeddings, bundled_encoder: InstructorEncoder
) -> None:
    got = emb.embed_documents(DOCS)
    assert isinstance(got, list) and all(isinstance(v, list) and isinstance(v[0], float) for v in got)
    want = bundled_encoder.encode(DOCS, instruction=emb.document_instruction)
    np.testing.assert_allclose(np.array(got), want, atol=1e-5)


def test_query_and_document_sides_use_their_own_instruction(emb: InstructorEmbeddings) -> None:
    text = "Fyodor Dostoyevsky."
    assert not np.allclose(emb.embed_query(text), emb.embed_documents([text])[0], atol=1e-3)
    same = InstructorEmbeddings(device="cpu", query_instruction="Represent the sentence: ")
    same.document_instruction = "Represent the sentence: "
    np.testing.assert_allclose(same.embed_query(text), same.embed_documents([text])[0], atol=1e-6)


async def test_async_equals_sync(emb: InstructorEmbeddings) -> None:
    docs_async, query_async = await asyncio.gather(emb.aembed_documents(DOCS), emb.aembed_query(QUERIES[0]))
    np.testing.assert_allclose(docs_async, emb.embed_documents(DOCS), atol=1e-6)
    np.testing.assert_allclose(query_async, emb.embed_query(QUERIES[0]), atol=1e-6)


def test_instances_share_one_encoder(emb: InstructorEmbeddings) -> None:
    other = InstructorEmbeddings.for_task("clustering", device="cpu", batch_size=7)
    assert isinstance(emb.embedding_backend, LocalBackend) and isinstance(other.embedding_backend, LocalBackend)
    assert other.embedding_backend.encoder is emb.embedding_backend.encoder


def test_embed_instruction_and_model_name_aliases() -> None:
    old_style = InstructorEmbeddings(embed_instruction="Represent the answer: ", model_name=None)
    assert old_style.document_instruction == "Represent the answer: "
    assert InstructorEmbeddings(document_instruction="x: ").document_instruction == "x: "


@pytest.mark.parametrize("bad", [{"embed_instructions": "x: "}, {"encode_kwarg": {}}, {"modle": "m"}])
def test_unknown_field_fails(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=next(iter(bad))):
        InstructorEmbeddings(**bad)


def test_bad_batch_size_fails() -> None:
    with pytest.raises(ValidationError, match="batch_size"):
        InstructorEmbeddings(batch_size=0)


@pytest.mark.parametrize("task", PRESETS)
def test_for_task_uses_the_presets(task: str) -> None:
    emb = InstructorEmbeddings.for_task(task, domain="medical", batch_size=8)
    want = preset(task, domain="medical")
    assert (emb.query_instruction, emb.document_instruction, emb.batch_size) == (want.query, want.document, 8)


def test_for_task_errors() -> None:
    with pytest.raises(ValueError, match="unknown task 'retreival'.*retrieval"):
        InstructorEmbeddings.for_task("retreival")
    with pytest.raises(TypeError, match="query_instruction"):
        InstructorEmbeddings.for_task("sts", query_instruction="x: ")


class _Recorder:
    """A backend that records calls and answers with hash vectors."""

    def __init__(self) -> None:
        self.encoder = HashEncoder(dim=8)
        self.defaults = self.encoder.defaults
        self.calls: list[tuple[list[str], Any]] = []

    def embed(self, texts: Sequence[str], instruction: Any = None) -> np.ndarray:
        self.calls.append((list(texts), instruction))
        return self.encoder.encode(list(texts), instruction)

    async def aembed(self, texts: Sequence[str], instruction: Any = None) -> np.ndarray:
        return self.embed(texts, instruction)


def test_empty_input_makes_no_backend_call() -> None:
    backend = _Recorder()
    emb = InstructorEmbeddings.from_backend(backend)
    assert emb.embed_documents([]) == [] and asyncio.run(emb.aembed_documents([])) == []
    assert backend.calls == []


def test_from_backend_keeps_its_backend_and_passes_instructions() -> None:
    backend = _Recorder()
    emb = InstructorEmbeddings.from_backend(backend, query_instruction="q: ", document_instruction="d: ")
    emb.batch_size = 3  # changing a field does not replace an injected backend
    emb.embed_query("a")
    emb.embed_documents(["b", "c"])
    assert emb.embedding_backend is backend
    assert backend.calls == [(["a"], "q: "), (["b", "c"], "d: ")]
    with pytest.raises(TypeError, match="EmbeddingBackend"):
        InstructorEmbeddings.from_backend(object())  # type: ignore[arg-type]


def test_backend_is_built_from_the_fields_and_rebuilt_when_they_change(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []

    def fake_make_backend(**kwargs: Any) -> _Recorder:
        made.append(kwargs)
        return _Recorder()

    monkeypatch.setattr(plugin_module, "make_backend", fake_make_backend)
    emb = InstructorEmbeddings(model="some/model", endpoint="http://127.0.0.1:8000", batch_size=5)
    assert made == []  # built lazily
    first = emb.embedding_backend
    assert emb.embedding_backend is first and len(made) == 1
    assert made[0] == {
        "model": "some/model",
        "endpoint": "http://127.0.0.1:8000",
        "device": None,
        "dtype": None,
        "backend": None,
        "trust_remote_code": False,
        "revision": None,
        "cache_folder": None,
        "batch_size": 5,
        "normalize": True,
        "show_progress": False,
    }
    emb.query_instruction = "q: "  # instructions are per call: same backend
    assert emb.embedding_backend is first
    emb.batch_size = 9
    assert emb.embedding_backend is not first and made[-1]["batch_size"] == 9


class _BlockingEncoder(HashEncoder):
    """encode() waits until the event loop sets ``go``: it deadlocks if the loop is blocked."""

    def __init__(self) -> None:
        super().__init__(dim=8)
        self.go = threading.Event()

    def encode(self, texts: Any, instruction: Any = None, **kwargs: Any) -> np.ndarray:
        if not self.go.wait(timeout=10):
            raise TimeoutError("the event loop was blocked while embedding")
        return super().encode(texts, instruction, **kwargs)


async def test_async_does_not_block_the_event_loop() -> None:
    encoder = _BlockingEncoder()
    emb = InstructorEmbeddings.from_backend(LocalBackend(encoder=encoder))

    async def release() -> None:
        await asyncio.sleep(0.05)
        encoder.go.set()

    vectors, _ = await asyncio.gather(emb.aembed_documents(["a", "b"]), release())
    assert len(vectors) == 2 and len(vectors[0]) == 8


def test_missing_langchain_core_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "langchain_core" or m.startswith("langchain_core.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "langchain_core", None)
    monkeypatch.delitem(sys.modules, "instructor_plugins.langchain")
    with pytest.raises(ImportError, match=r'pip install "instructor-plugins\[langchain\]"'):
        importlib.import_module("instructor_plugins.langchain")


def test_default_instructions_follow_the_model() -> None:
    from instructor_plugins.defaults import InstructionDefaults
    from instructor_plugins.llama_index import InstructorEmbedding

    emb = InstructorEmbeddings()
    assert (emb.query_instruction, emb.document_instruction, emb.model) == (None, None, None)
    li = InstructorEmbedding()
    assert (li.query_instruction, li.text_instruction, li.model_name) == (None, None, None)
    # an untrained model (the bundled one, the fake by default): no instructions
    untrained = InstructorEmbeddings.from_backend(_Recorder())
    assert untrained.instructions() == preset("retrieval").__class__("", "")
    # an instruction-trained model: its recorded defaults; an explicit field still wins
    trained = _Recorder()
    trained.defaults = InstructionDefaults(True, "q: ", "d: ")
    emb = InstructorEmbeddings.from_backend(trained, query_instruction="")
    emb.embed_query("a")
    emb.embed_documents(["b"])
    assert trained.calls == [(["a"], ""), (["b"], "d: ")]


def test_explicit_instruction_on_an_untrained_model_warns_once() -> None:
    import warnings

    from instructor_plugins import plugin

    plugin._WARNED.clear()
    emb = InstructorEmbeddings.from_backend(_Recorder(), model="untrained-model", query_instruction="q: ")
    with pytest.warns(UserWarning, match="model untrained-model was not instruction-trained"):
        emb.embed_query("a")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb.embed_query("b")  # once per model
        InstructorEmbeddings.from_backend(_Recorder(), model="untrained-model").embed_query("c")

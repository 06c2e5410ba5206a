"""LangChain's standard embeddings suites on InstructorEmbeddings with the real bundled model.

The "integration" suite embeds with the model; it needs no Ray or network, so it lives in the unit
folder.
"""

from __future__ import annotations

from typing import Any

from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from instructor_plugins.langchain import InstructorEmbeddings


class TestInstructorEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[InstructorEmbeddings]:
        return InstructorEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"device": "cpu"}


class TestInstructorEmbeddingsStandard(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[InstructorEmbeddings]:
        return InstructorEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"device": "cpu", "batch_size": 2}

"""Retrieval with LangChain: chatterbot-corpus answers in an InMemoryVectorStore, INSTRUCTOR embeddings.

Indexes every distinct answer of four chatterbot-corpus categories (trivia, literature, science,
history; real text that installs offline with ``pip install chatterbot-corpus``), asks questions
worded differently from the corpus, prints the top hits and checks that the expected answer is
among them. Runs in-process on the bundled model; pass ``--endpoint http://127.0.0.1:8000`` to use
the Ray Serve app instead.

    PYTHONPATH=. python examples/langchain_rag.py
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402

from instructor_plugins.corpora import chatterbot_pairs  # noqa: E402
from instructor_plugins.langchain import InstructorEmbeddings  # noqa: E402

CATEGORIES = ("trivia", "literature", "science", "history")
TOP_K = 3
# question -> the corpus answers that answer it (any of them in the top k is a hit)
QUESTIONS = {
    "Who is the author of Frankenstein?": {"Mary Shelley."},
    "Who invented the light bulb?": {"thomas edison."},
    "What do the letters BMW mean?": {"Bavarian Motor Works"},
    "Who wrote The Hobbit?": {"The Hobbit was written by J.R.R. Tolkein."},
    "Who wrote the novel Vineland?": {"Thomas Pynchon.", "Vineland is a novel by Thomas Pynchon."},
}


def build_store(embeddings: InstructorEmbeddings) -> InMemoryVectorStore:
    """One document per distinct answer, with its category and question as metadata."""
    seen: dict[str, Document] = {}
    for pair in chatterbot_pairs():
        if pair.category in CATEGORIES and pair.answer not in seen:
            seen[pair.answer] = Document(
                page_content=pair.answer, metadata={"category": pair.category, "question": pair.question}
            )
    store = InMemoryVectorStore(embeddings)
    store.add_documents(list(seen.values()))
    print(f"indexed {len(seen)} chatterbot answers from {', '.join(CATEGORIES)}")
    return store


def main(endpoint: str | None = None) -> int:
    embeddings = InstructorEmbeddings.for_task("qa", endpoint=endpoint)
    print(f"query instruction:    {embeddings.query_instruction!r}")
    print(f"document instruction: {embeddings.document_instruction!r}")
    store = build_store(embeddings)
    retriever = store.as_retriever(search_kwargs={"k": TOP_K})
    hits = 0
    for question, expected in QUESTIONS.items():
        found = [doc.page_content for doc in retriever.invoke(question)]
        hit = bool(expected & set(found))
        hits += hit
        print(f"\n{'HIT ' if hit else 'MISS'} {question}")
        for rank, text in enumerate(found, 1):
            print(f"  {rank}. {text}")
    print(f"\n{hits}/{len(QUESTIONS)} questions found their answer in the top {TOP_K}")
    assert hits == len(QUESTIONS), f"only {hits}/{len(QUESTIONS)} answers retrieved"
    return hits


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default=None, help="Ray Serve app URL; default: embed in this process")
    main(parser.parse_args().endpoint)

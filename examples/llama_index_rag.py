"""Retrieval with LlamaIndex: WordNet definitions in a VectorStoreIndex, INSTRUCTOR embeddings.

A "reverse dictionary": WordNet noun definitions (Debian ``wordnet-base``, real text that installs
offline) are the documents; questions describe a thing in other words, and the retriever must
return the definition of the word meant. Eight target synsets are indexed with a fixed random
sample of other nouns as distractors. The instructions are the model's own defaults. Only
retrieval runs, so no LLM is needed. Pass
``--endpoint http://127.0.0.1:8000`` to embed with the Ray Serve app instead of in-process.

    PYTHONPATH=. python examples/llama_index_rag.py
"""

from __future__ import annotations

import argparse
import os
import random

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from llama_index.core import Document, VectorStoreIndex  # noqa: E402

from instructor_plugins.corpora import Synset, wordnet_synsets  # noqa: E402
from instructor_plugins.llama_index import InstructorEmbedding  # noqa: E402

DISTRACTORS = 292
TOP_K = 3
# question -> WordNet synset id whose definition answers it
QUESTIONS = {
    "Which flightless bird lives in the cold south and swims with flippers?": "02055803-n",  # penguin
    "Where are bread and cakes made and sold?": "02776631-n",  # bakery
    "What instrument tells you how hot or cold something is?": "04421872-n",  # thermometer
    "What is a huge mass of ice that creeps slowly downhill?": "09289331-n",  # glacier
    "Which instrument with four strings is played with a bow?": "04536866-n",  # violin
    "Who should I see about a toothache?": "10004282-n",  # dentist
    "What makes faraway objects look bigger?": "04403638-n",  # telescope
    "What kind of mountain is built from lava and ash?": "09472597-n",  # volcano
}


def pick_synsets(seed: int = 0) -> list[Synset]:
    """The target synsets plus a fixed random sample of other nouns."""
    nouns = wordnet_synsets("noun")
    targets = [s for s in nouns if s.id in QUESTIONS.values()]
    others = [s for s in nouns if s.id not in QUESTIONS.values()]
    chosen = targets + random.Random(seed).sample(others, DISTRACTORS)
    random.Random(seed).shuffle(chosen)
    return chosen


def main(endpoint: str | None = None) -> int:
    synsets = pick_synsets()
    documents = [
        Document(
            text=s.definition,
            doc_id=s.id,
            metadata={"lemmas": ", ".join(s.lemmas)},
            excluded_embed_metadata_keys=["lemmas"],
        )
        for s in synsets
    ]
    # The same as setting llama_index.core.Settings.embed_model, without changing global state. No
    # instruction is given, so the model's own defaults apply: the paper's retrieval instructions for an
    # INSTRUCTOR checkpoint, none for the bundled MiniLM, which was not instruction-trained (an instruction
    # there is pooled as plain text and cost this example a hit). InstructorEmbedding.for_task("retrieval")
    # sets them explicitly; examples/langchain_rag.py does so.
    embed_model = InstructorEmbedding(endpoint=endpoint)
    instructions = embed_model.instructions()
    print(f"query instruction: {instructions.query!r}")
    print(f"text instruction:  {instructions.document!r}")
    index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)
    print(f"indexed {len(documents)} WordNet noun definitions")
    retriever = index.as_retriever(similarity_top_k=TOP_K)

    hits = 0
    for question, synset_id in QUESTIONS.items():
        found = retriever.retrieve(question)
        hit = synset_id in [n.node.ref_doc_id for n in found]
        hits += hit
        print(f"\n{'HIT ' if hit else 'MISS'} {question}")
        for rank, n in enumerate(found, 1):
            print(f"  {rank}. [{n.node.metadata['lemmas']}] {n.node.get_content()[:90]}  ({n.score:.3f})")
    print(f"\n{hits}/{len(QUESTIONS)} questions found their word in the top {TOP_K}")
    assert hits == len(QUESTIONS), f"only {hits}/{len(QUESTIONS)} definitions retrieved"
    return hits


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default=None, help="Ray Serve app URL; default: embed in this process")
    main(parser.parse_args().endpoint)

"""Other wordings of each trained task's instructions, for ``--instruction-variants``.

Every task of :mod:`training.recipe.sources` has one query and one document instruction. Trained on 16 fixed
strings, a model can use each as a task ID without reading it; a held-out task always comes with an
instruction it never saw. With ``CorpusConfig(instruction_variants=True)`` each *training* pair gets
one of three wordings of its task's instructions (the canonical one or one of the two below, drawn by
:func:`pick`), so the same task arrives in words the model has to read. Dev, test and held-out rows
keep the canonical wording, so evaluation is unchanged.

The paraphrases are hand-written in the paper's unified format ("Represent the {domain} {text type}
for {objective}: "), with other words for the text type and the objective. None copies a held-out
task's wording (computing dictionary, man pages, Lee STS, polarity, newsgroups).
"""

from __future__ import annotations

import hashlib

from instructor_plugins.instructions import make_instruction

__all__ = ["VARIANTS", "pick"]

Parts = tuple[str, str]


def _asym(*variants: tuple[Parts, Parts], domain: str | None = None) -> tuple[tuple[str, str], ...]:
    return tuple((make_instruction(*q, domain=domain), make_instruction(*d, domain=domain)) for q, d in variants)


def _sym(*variants: Parts, domain: str | None = None) -> tuple[tuple[str, str], ...]:
    return tuple((make_instruction(*p, domain=domain),) * 2 for p in variants)


# task name -> other (query instruction, document instruction) wordings; the canonical one is the task's own.
VARIANTS: dict[str, tuple[tuple[str, str], ...]] = {
    "chatterbot_question_to_answer": _asym(
        (("chat question", "finding the reply to it"), ("chat reply", "retrieval")),
        (
            ("question from a conversation", "retrieving a fitting response"),
            ("response in a conversation", "retrieval"),
        ),
    ),
    "chatterbot_same_category": _sym(
        ("chat question", "categorizing it by subject"),
        ("question from a conversation", "grouping by theme"),
    ),
    "debian_summary_to_description": _asym(
        (("package summary", "finding the package's detailed description"), ("package description", "retrieval")),
        (
            ("one-line software summary", "retrieving the long description"),
            ("detailed software description", "retrieval"),
        ),
        domain="Debian",
    ),
    "debian_description_to_summary": _asym(
        (("package description", "finding its short summary"), ("package summary", "retrieval")),
        (
            ("detailed software description", "retrieving the one-line summary"),
            ("one-line software summary", "retrieval"),
        ),
        domain="Debian",
    ),
    "debian_name_to_summary": _asym(
        (("package name", "finding a summary of its purpose"), ("package summary", "retrieval")),
        (("software name", "retrieving what the program is for"), ("one-line software summary", "retrieval")),
        domain="Debian",
    ),
    "debian_same_section": _sym(
        ("package summary", "categorizing it by subject"),
        ("one-line software summary", "grouping by theme"),
        domain="Debian",
    ),
    "debian_same_tag": _sym(
        ("package description", "categorizing it by subject"),
        ("detailed software description", "grouping by theme"),
        domain="Debian",
    ),
    "wordnet_word_to_definition": _asym(
        (("English word", "finding what it means"), ("gloss", "retrieval")),
        (("term", "retrieving the explanation of its meaning"), ("explanation of a word's meaning", "retrieval")),
    ),
    "wordnet_definition_to_word": _asym(
        (("gloss", "finding the word it describes"), ("English word", "retrieval")),
        (("explanation of a word's meaning", "retrieving the term it explains"), ("term", "retrieval")),
    ),
    "wordnet_synonyms": _sym(
        ("English word", "finding words with the same meaning"),
        ("term", "retrieving terms that mean the same"),
    ),
    "wordnet_hypernym": _asym(
        (("English word", "finding a more general word for it"), ("general term", "retrieval")),
        (("term", "retrieving the class it belongs to"), ("class of things", "retrieval")),
    ),
    "wordnet_example_to_sense": _asym(
        (("example sentence", "finding the meaning its key word has here"), ("gloss", "retrieval")),
        (("usage example", "retrieving the sense of the word it illustrates"), ("word sense explanation", "retrieval")),
    ),
    "wordnet_same_field": _sym(
        ("gloss", "categorizing it by subject"),
        ("explanation of a word's meaning", "grouping by theme"),
    ),
    "gcide_term_to_definition": _asym(
        (("headword", "finding what it means"), ("dictionary entry", "retrieval")),
        (("word from a dictionary", "retrieving the explanation of its meaning"), ("dictionary sense", "retrieval")),
    ),
    "gcide_definition_to_term": _asym(
        (("dictionary entry", "finding the headword it explains"), ("headword", "retrieval")),
        (("dictionary sense", "retrieving the word it describes"), ("word from a dictionary", "retrieval")),
    ),
    "vera_acronym_to_expansion": _asym(
        (("abbreviation from computing", "finding what it stands for"), ("full form", "retrieval")),
        (("technical acronym", "retrieving its spelled-out form"), ("spelled-out abbreviation", "retrieval")),
    ),
    "wordnet_same_sentiment": _sym(
        ("example sentence", "categorizing its emotional tone"),
        ("usage example", "grouping by the feeling it expresses"),
    ),
    "definition_paraphrase": _sym(
        ("gloss", "finding glosses with the same meaning"),
        ("explanation of a word's meaning", "retrieving explanations that say the same"),
    ),
}


def pick(task: str, canonical: tuple[str, str], key: str, seed: int = 0) -> tuple[str, str]:
    """The (query, document) instructions of one training pair: the canonical wording or a variant.

    The choice is a hash of ``(seed, task, key)``, uniform over the canonical wording and the task's
    variants; a task without variants keeps its canonical wording.

    >>> pick("no_such_task", ("q: ", "d: "), "any key")
    ('q: ', 'd: ')
    """
    choices = (canonical, *VARIANTS.get(task, ()))
    digest = hashlib.sha1(f"{seed}:{task}:{key}".encode()).digest()
    return choices[int.from_bytes(digest[:8], "big") % len(choices)]

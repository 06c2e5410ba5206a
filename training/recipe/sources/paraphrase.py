"""Definition paraphrases: GCIDE's and WordNet's definitions of the same word (symmetric similarity).

Raw input: GCIDE's dictd entries (Debian ``dict-gcide``, 1913 Webster and additions) and WordNet's
``data.*`` texts. Only words with exactly one WordNet sense are used; GCIDE's first sense of the word
is usually the same meaning, in words written independently (mostly 1913 Webster), but not always:
the pairs are distant supervision, with some noise.
A GCIDE sense loses its trailing citation (`` -- Author``). Dropped: senses that still carry
markup (brackets, backslashes), either definition under four words, GCIDE senses copied from WordNet (they
end in ``Syn:``), and pairs sharing half their words or more (Jaccard >= 0.5: a copy, not a
paraphrase). The split key is the WordNet synset, as in the WordNet tasks.

Task: definition -> the other dictionary's definition of the same word (symmetric, paraphrase:
"retrieving semantically similar definitions"). Each pair's direction is a seeded coin flip, so
both dictionaries' styles appear on both sides.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from typing import Any

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, dictd, task, wordnet

__all__ = ["SOURCE", "build", "locate", "overlap"]

MIN_WORDS = 4
MAX_OVERLAP = 0.5


def _usable(definition: str) -> bool:
    if "Syn:" in definition or any(c in definition for c in "[]\\"):
        return False
    return len(definition.split()) >= MIN_WORDS


def overlap(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' lower-cased word sets.

    >>> overlap("a walkway of boards", "a path made of wooden planks")
    0.25
    """
    wa, wb = set(re.findall(r"[a-z]+", a.lower())), set(re.findall(r"[a-z]+", b.lower()))
    return len(wa & wb) / max(1, len(wa | wb))


def build(raw: dict[str, Any]) -> list[TaskPairs]:
    """The paraphrase task from ``{"gcide": entries, "wordnet": {pos: data text}}`` (pure)."""
    same = TaskPairs(
        task(
            "definition_paraphrase",
            "paraphrase",
            "paraphrase",
            ("dictionary definition", "retrieving semantically similar definitions"),
            category="sts",
        )
    )
    senses: dict[str, list[wordnet.WordNetSynset]] = defaultdict(list)
    for synset in wordnet.synsets_of(raw["wordnet"]):
        for lemma in dict.fromkeys(lemma.lower() for lemma in synset.lemmas):
            senses[lemma].append(synset)
    rng = random.Random(0)
    seen: set[str] = set()
    for _, entry in raw["gcide"]:
        parsed = dictd.gcide_definition(entry)
        if parsed is None:
            continue
        head, definition = parsed[0], parsed[1].split(" -- ", 1)[0].strip()
        found = senses.get(head.lower(), [])
        if len(found) != 1 or found[0].id in seen:
            continue
        other = found[0].definition
        if not (_usable(definition) and _usable(other)) or overlap(definition, other) >= MAX_OVERLAP:
            continue
        seen.add(found[0].id)
        a, b = (definition, other) if rng.random() < 0.5 else (other, definition)
        same.pairs.append(Pair(a, b, found[0].id))
    return [same]


def locate() -> dict[str, Any]:
    """GCIDE's entries and WordNet's data texts; :class:`SourceUnavailable` when either is missing."""
    gcide = dictd.read("gcide")
    if gcide is None:
        raise SourceUnavailable(f"paraphrase: {dictd.ROOT}/gcide.index missing (apt-get install dict-gcide)")
    try:
        return {"gcide": gcide, "wordnet": wordnet.locate()}
    except SourceUnavailable as exc:
        raise SourceUnavailable(f"paraphrase: {exc}") from exc


SOURCE = Source(
    name="paraphrase",
    licence="GPL-3.0+ (GCIDE definitions); WordNet 3.0 license (WordNet definitions)",
    install="apt-get install dict-gcide wordnet-base",
    locate=locate,
    build=build,
    debian_packages=("dict-gcide", "wordnet-base"),
)

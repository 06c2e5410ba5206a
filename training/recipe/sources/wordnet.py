"""WordNet 3.0 (Debian ``wordnet-base``): words, definitions, examples, synonyms, hypernyms, antonyms.

Raw files: ``/usr/share/wordnet/data.{noun,verb,adj,adv}``. Each synset is one split key, so a
word's definition, its examples and its synonyms stay in one split.

Tasks: word -> definition, definition -> word, synonyms (antonyms as hard negatives), word ->
hypernym (its broader category), example sentence -> the definition of the sense it uses,
definition -> definition of the same semantic field (symmetric, WordNet's lexicographer files).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from instructor_plugins.corpora import WORDNET_DIR, WORDNET_POS, Synset, parse_wordnet_data
from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.splits import same_split_partner

__all__ = ["SOURCE", "WordNetSynset", "build", "locate", "parse_data", "synsets_of"]

ROOT = WORDNET_DIR
POS_FILES = tuple(WORDNET_POS)
_QUOTED = re.compile(r'"([^"]{12,})"')
_MARKER = re.compile(r"\(.*\)$")  # adjective position markers: ready_to_hand(p), outback(a)


@dataclass(frozen=True)
class WordNetSynset:
    """The recipe's view of one :class:`instructor_plugins.corpora.Synset`."""

    id: str
    lexname: str
    lemmas: tuple[str, ...]
    definition: str
    examples: tuple[str, ...]
    hypernyms: tuple[str, ...]
    antonyms: tuple[str, ...]


def parse_data(text: str, pos: str) -> list[WordNetSynset]:
    """Parse one ``data.<pos>`` file with :func:`instructor_plugins.corpora.parse_wordnet_data`."""
    return [_recipe_view(s) for s in parse_wordnet_data(text.splitlines(), pos)]


def _recipe_view(synset: Synset) -> WordNetSynset:
    """The fields the tasks use: lemmas without adjective markers, the gloss split, pointers by kind."""
    gloss = synset.gloss
    return WordNetSynset(
        id=synset.id,
        lexname=synset.lexname,
        lemmas=tuple(_MARKER.sub("", lemma) for lemma in synset.lemmas),
        definition=gloss.split(";", 1)[0].strip().strip('"').strip(),
        examples=tuple(_QUOTED.findall(gloss)),
        hypernyms=tuple(target for symbol, target in synset.pointers if symbol in ("@", "@i")),
        antonyms=tuple(target for symbol, target in synset.pointers if symbol == "!"),
    )


def synsets_of(raw: dict[str, str]) -> list[WordNetSynset]:
    """Every synset of ``{pos: data file text}``, in ``POS_FILES`` order; absent parts of speech are skipped."""
    return [s for pos in POS_FILES if pos in raw for s in parse_data(raw[pos], pos)]


def build(raw: dict[str, str]) -> list[TaskPairs]:
    """The WordNet tasks from ``{pos: data file text}`` (pure)."""
    synsets = synsets_of(raw)
    by_id = {s.id: s for s in synsets}
    rng = random.Random(0)
    specs = {
        "word_def": task(
            "wordnet_word_to_definition",
            "wordnet",
            "definition",
            ("word", "retrieving its dictionary definition"),
            ("dictionary definition", "retrieval"),
            category="retrieval",
        ),
        "def_word": task(
            "wordnet_definition_to_word",
            "wordnet",
            "reverse dictionary",
            ("dictionary definition", "retrieving the word it defines"),
            ("word", "retrieval"),
            category="retrieval",
        ),
        "synonym": task("wordnet_synonyms", "wordnet", "synonym", ("word", "retrieving its synonyms"), category="sts"),
        "hypernym": task(
            "wordnet_hypernym",
            "wordnet",
            "hypernym",
            ("word", "retrieving its broader category"),
            ("category word", "retrieval"),
            category="retrieval",
        ),
        "example": task(
            "wordnet_example_to_sense",
            "wordnet",
            "word sense",
            ("sentence", "retrieving the definition of the word sense it uses"),
            ("dictionary definition", "retrieval"),
            category="retrieval",
        ),
        "field": task(
            "wordnet_same_field",
            "wordnet",
            "topic",
            ("dictionary definition", "classifying its topic"),
            category="clustering",
        ),
    }
    out = {k: TaskPairs(spec) for k, spec in specs.items()}
    by_field: dict[str, list[str]] = defaultdict(list)
    for s in synsets:
        if len(s.definition) < 12:
            continue
        word = s.lemmas[0]
        out["word_def"].pairs.append(Pair(word, s.definition, s.id))
        out["def_word"].pairs.append(Pair(s.definition, word, s.id))
        distinct = list(dict.fromkeys(lemma for lemma in s.lemmas))
        if len(distinct) > 1:
            antonym = next((by_id[a].lemmas[0] for a in s.antonyms if a in by_id), None)
            out["synonym"].pairs.append(Pair(distinct[0], distinct[1], s.id, neg=antonym))
        hyper = next((by_id[h] for h in s.hypernyms if h in by_id), None)
        if hyper is not None and hyper.lemmas[0] != word:
            out["hypernym"].pairs.append(Pair(word, hyper.lemmas[0], s.id))
        for example in s.examples[:1]:
            out["example"].pairs.append(Pair(example, s.definition, s.id))
        if not s.lexname.endswith(("Tops", ".all", ".pert", ".ppl")):
            by_field[s.lexname].append(s.id)
    for label, members in sorted(by_field.items()):
        for a, b in same_split_partner(members, lambda m: m, rng):
            out["field"].pairs.append(Pair(by_id[a].definition, by_id[b].definition, a, label=label))
    return list(out.values())


def locate(root: Path = ROOT) -> dict[str, str]:
    """The ``data.*`` texts; :class:`SourceUnavailable` when WordNet is not installed."""
    if not (root / "data.noun").is_file():
        raise SourceUnavailable(f"wordnet: {root}/data.noun missing (apt-get install wordnet-base)")
    return {
        pos: (root / f"data.{pos}").read_text(encoding="utf-8", errors="replace")
        for pos in POS_FILES
        if (root / f"data.{pos}").is_file()
    }


SOURCE = Source(
    name="wordnet",
    licence="WordNet 3.0 license (Princeton University; BSD-like)",
    install="apt-get install wordnet-base",
    locate=locate,
    build=build,
    debian_packages=("wordnet-base",),
)

"""Real third-party text that installs offline, for demos, examples, tests and offline evals.

- chatterbot-corpus (BSD-3-Clause, pip ``chatterbot-corpus``): question/answer conversations in
  21 categories.
- WordNet 3.0 (WordNet license, Debian ``wordnet-base``): synsets with synonyms, glosses and pointers;
  :func:`parse_wordnet_data` is the one parser of its ``data.*`` files (the training recipe uses it too).
- gensim's test data (LGPL-2.1 package, pip ``gensim``): the Lee news corpus with human
  similarity ratings, Pang & Lee polarity snippets, mini 20-newsgroups. :func:`gensim_test_file`
  finds a file without importing gensim.

Nothing here downloads anything; a missing source raises ``FileNotFoundError`` naming what to
install.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "QAPair",
    "Synset",
    "chatterbot_pairs",
    "gensim_test_file",
    "parse_wordnet_data",
    "wordnet_synsets",
]

WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
WORDNET_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body noun.cognition "
    "noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive noun.object "
    "noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape "
    "noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication verb.competition "
    "verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception verb.possession "
    "verb.social verb.stative verb.weather adj.ppl"
).split()
"""Lexicographer file names by number (WordNet's ``lexnames`` file)."""


@dataclass(frozen=True)
class QAPair:
    """One question and one of its answers, with the chatterbot category (file stem)."""

    question: str
    answer: str
    category: str


@dataclass(frozen=True)
class Synset:
    """A WordNet synset: its id (offset + part of speech), lemmas, gloss, lexicographer file and pointers."""

    id: str
    """``offset-pos``, e.g. ``00001740-n`` (satellite adjectives count as ``a``)."""
    pos: str
    """The part of speech of its file: ``noun``, ``verb``, ``adj`` or ``adv``."""
    lemmas: tuple[str, ...]
    """Its words, underscores replaced by spaces (adjective markers such as ``(p)`` kept)."""
    gloss: str
    """The definition, then any quoted usage examples, ``;``-separated."""
    lexname: str = ""
    """Its lexicographer file, e.g. ``noun.artifact`` (the file number when WordNet names none)."""
    pointers: tuple[tuple[str, str], ...] = ()
    """``(symbol, synset id)`` per pointer: ``@`` hypernym, ``@i`` instance hypernym, ``!`` antonym, ..."""

    @property
    def definition(self) -> str:
        """The gloss without its quoted usage examples."""
        return self.gloss.split('; "', 1)[0].strip()


def chatterbot_pairs(language: str = "english") -> list[QAPair]:
    """Every (question, answer) pair of the chatterbot corpus, in file then corpus order.

    A conversation ``[q, a1, a2, ...]`` gives the pair ``(q, a1)``; later turns are dropped, as
    are non-string turns. Requires ``pip install chatterbot-corpus pyyaml``.
    """
    spec = importlib.util.find_spec("chatterbot_corpus")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("chatterbot corpus not installed: pip install chatterbot-corpus")
    import yaml

    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / language
    pairs: list[QAPair] = []
    for path in sorted(folder.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for conv in data.get("conversations") or []:
            if len(conv) >= 2 and isinstance(conv[0], str) and isinstance(conv[1], str):
                q, a = conv[0].strip(), conv[1].strip()
                if q and a:
                    pairs.append(QAPair(q, a, path.stem))
    return pairs


def wordnet_synsets(pos: str = "noun", *, limit: int | None = None, root: Path = WORDNET_DIR) -> list[Synset]:
    """Synsets from WordNet's ``data.<pos>`` file (``noun``, ``verb``, ``adj``, ``adv``).

    Needs Debian's ``wordnet-base`` (``apt-get install wordnet-base``), which puts the database in
    ``/usr/share/wordnet``. Lemmas have underscores replaced by spaces.
    """
    if pos not in WORDNET_POS:
        raise ValueError(f"unknown part of speech {pos!r}; valid: {list(WORDNET_POS)}")
    path = root / f"data.{pos}"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: install WordNet with `apt-get install wordnet-base`")
    with path.open(encoding="utf-8", errors="replace") as fh:
        return list(itertools.islice(parse_wordnet_data(fh, pos), limit))


def parse_wordnet_data(lines: Iterable[str], pos: str) -> Iterator[Synset]:
    """The synsets of the lines of a WordNet ``data.<pos>`` file, in file order.

    A synset line is ``offset lex_filenum ss_type w_cnt [word lex_id]... p_cnt [symbol offset pos
    source/target]... | gloss`` (``w_cnt`` in hexadecimal); the license header's lines start with
    two spaces and are skipped.
    """
    for line in lines:
        if line.startswith("  ") or "|" not in line:
            continue
        head, gloss = line.split("|", 1)
        fields = head.split()
        n_words = int(fields[3], 16)
        at = 4 + 2 * n_words
        starts = range(at + 1, at + 1 + 4 * int(fields[at]), 4)
        pointers = tuple((fields[j], _synset_id(fields[j + 1], fields[j + 2])) for j in starts)
        lex = int(fields[1])
        yield Synset(
            id=_synset_id(fields[0], fields[2]),
            pos=pos,
            lemmas=tuple(fields[4 + 2 * i].replace("_", " ") for i in range(n_words)),
            gloss=gloss.strip(),
            lexname=WORDNET_LEXNAMES[lex] if lex < len(WORDNET_LEXNAMES) else fields[1],
            pointers=pointers,
        )


def _synset_id(offset: str, ss_type: str) -> str:
    return f"{offset}-{'a' if ss_type == 's' else ss_type}"


def gensim_test_file(name: str) -> Path:
    """Path of a file in gensim's ``test/test_data`` folder (e.g. ``"lee.cor"``), gensim not imported."""
    try:
        dist = importlib.metadata.distribution("gensim")
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError("gensim's test data needs `pip install gensim`") from exc
    path = Path(str(dist.locate_file(f"gensim/test/test_data/{name}")))
    if not path.exists():
        raise FileNotFoundError(f"{name} is not in gensim's test data ({path.parent})")
    return path

"""FreeDict English-to-X translation dictionaries: English word -> its translation, and translation <-> translation.

Raw files: ``/usr/share/dictd/freedict-eng-<lang>.index`` + ``.dict.dz`` (dictd format, read with
:func:`training.recipe.sources.dictd.read`), from Debian ``dict-freedict-eng-deu``, ``-eng-fra``,
``-eng-spa``, ``-eng-ita`` and ``-eng-nld`` (FreeDict 2022.04.21). Licence: GPL-2+ (FreeDict
contributors; Debian packaging GPL-3+), per ``/usr/share/doc/dict-freedict-*/copyright``.

An entry is ``headword /pronunciation/`` then translation lines (``1. ...`` per sense) and, in
eng-deu, indented ``Synonyms: {...}``, ``see: {...}``, ``Note: ...`` and quoted example lines. The
headword loses its pronunciation; a translation loses sense numbers, grammar tags (``<masc>``,
``<pl>``...), usage labels (``[Am.]``, ``[comp.]``...) and braces; the senses are joined with
``"; "`` and cut to 400 characters at a separator. eng-deu has one entry per sense, so its English
side carries the entry's English sense notes and first three synonyms as a gloss, e.g. ``track
(on a sound recording medium; music track)``, ``track (race course, course, race track)``. Texts
are words and short phrases, so many are under 10 characters by nature (like WordNet lemmas);
texts under 2 characters are dropped. The split key is ``freedict:<english headword lowercased>``,
the same in every language pair, so one headword stays in one split.

Tasks: ``freedict_eng_<lang>_translation`` per installed language pair, English word (+ gloss) ->
its translation (retrieval, asymmetric, up to 4,000 pairs sampled with ``random.Random(0)``; eng-deu
has 460k entries); ``freedict_cross_lingual_equivalent``: the translations of one English
headword in two languages (symmetric, sts), for headwords with one single-sense entry in both
dictionaries (two languages drawn with ``random.Random(0)`` when more have it). The dictionaries'
senses are not aligned, so a few pairs join two different senses (``cast``: Italian ``calco``, a
mould, and French ``fondre``, to melt). Up to 4,000 pairs, sampled with ``random.Random(0)``.
A language pair that is not installed is left out; the source is unavailable only when none is.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from training.recipe.sources import Pair, Source, SourceUnavailable, TaskPairs, task
from training.recipe.sources.dictd import read

__all__ = ["LANGUAGES", "SOURCE", "FreeDictEntry", "build", "locate", "parse_entry"]

ROOT = Path("/usr/share/dictd")
LANGUAGES: dict[str, str] = {"deu": "German", "fra": "French", "spa": "Spanish", "ita": "Italian", "nld": "Dutch"}
"""FreeDict ``eng-<code>`` dictionaries read, with the language's English name."""
MAX_PAIRS = 4000
_MAX_CHARS = 400
_HEAD = re.compile(r"^(.*?)\s+/[^/\s][^/]*/")  # "cast /kˈast/ (cast /kˈast/ <>, ...) <v>" -> "cast"
_IPA = re.compile(r"(?<=\s)/[^/\s][^/]*/")
_LABEL = re.compile(r"^(see|Synonyms?|Note):")
_SENSE_NUMBER = re.compile(r"^\d+\.\s+")
_TAG = re.compile(r"<[^>]*>|\[[^\]]*\]")
_BRACED = re.compile(r"\{([^}]*)\}")
_WORD = re.compile(r"[^\W\d_]", re.UNICODE)


@dataclass(frozen=True)
class FreeDictEntry:
    """One parsed entry: the English headword, its translation per sense, its English synonyms and sense notes."""

    headword: str
    senses: tuple[str, ...]
    synonyms: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u2010", "-")).strip()


def _cut(text: str, limit: int = _MAX_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = max(text.rfind("; ", 0, limit), text.rfind(", ", 0, limit))
    return text[:cut] if cut > 20 else text[:limit]


def parse_entry(entry: str) -> FreeDictEntry | None:
    """The headword, the cleaned translations of each sense and the English synonyms and notes of a FreeDict entry.

    eng-deu prints the German side's ``Note:`` lines with the translation and the English side's after
    the ``Synonyms``/``see`` block, past a blank line: only those are kept, as English notes (an entry
    with no blank line keeps none, since its notes' language is unknown). ``None`` when the headword
    or every translation is empty or has no letter.
    """
    lines = entry.rstrip().split("\n")
    match = _HEAD.match(lines[0].strip())
    head = _squash(match.group(1) if match else lines[0])
    senses: list[str] = []
    synonyms: list[str] = []
    notes: list[str] = []
    past_blank = False
    for line in lines[1:]:
        stripped = line.strip()
        if not stripped:
            past_blank = past_blank or bool(senses)
            continue
        if stripped.startswith('"'):
            continue
        label = _LABEL.match(stripped)
        if label:
            if label.group(1).startswith("Synonym"):
                synonyms += [_squash(s) for s in _BRACED.findall(stripped) if _squash(s)]
            elif label.group(1) == "Note" and past_blank:
                notes.append(_squash(stripped[len("Note:") :]))
            continue
        if line.startswith(" ") and not stripped.startswith("["):
            continue  # an unknown indented annotation, not a translation line
        text = _TAG.sub(" ", _IPA.sub(" ", " " + _SENSE_NUMBER.sub("", stripped)))
        text = _squash(re.sub(r"[{}\[\]]", "", text))  # braces and a stray bracket ("repasser]")
        text = re.sub(r"\s+([,;])", r"\1", text).strip(" ,;")
        if _WORD.search(text) and text not in senses:
            senses.append(text)
    if not _WORD.search(head) or not senses:
        return None
    return FreeDictEntry(head, tuple(senses), tuple(synonyms), tuple(n for n in notes if n))


def _usable_head(head: str) -> bool:
    return 2 <= len(head) <= 40 and len(head.split()) <= 4 and bool(re.match(r"[^\W\d_]", head))


def _query(parsed: FreeDictEntry) -> str:
    gloss = [*parsed.notes, ", ".join(parsed.synonyms[:3])]
    gloss = [g for g in gloss if g]
    return f"{parsed.headword} ({'; '.join(gloss)})" if gloss else parsed.headword


def build(raw: dict[str, list[tuple[str, str]]]) -> list[TaskPairs]:
    """Tasks from ``{language code: dictd entries of eng-<code>}`` (pure); absent languages give no task.

    At most ``3 * MAX_PAIRS`` entries drawn with ``random.Random(0)`` are parsed until :data:`MAX_PAIRS`
    pairs are found (then put back in dictionary order), plus each entry whose index headword is in
    two or more dictionaries and only once in its own (for the cross-lingual task), so the 460k
    eng-deu entries are not all parsed.
    """
    rng = random.Random(0)
    codes = [code for code in LANGUAGES if code in raw]
    counts = {code: Counter(head for head, _ in raw[code]) for code in codes}
    shared = {head for head, n in Counter(h for c in counts.values() for h in c).items() if n >= 2}
    out: list[TaskPairs] = []
    # per language: lowercased headword -> its single-sense translation (None once the headword is ambiguous)
    simple: dict[str, dict[str, str | None]] = {}
    for code in codes:
        found = raw[code]
        order = rng.sample(range(len(found)), min(len(found), 3 * MAX_PAIRS))
        seen: set[str] = set()
        chosen: list[tuple[int, Pair]] = []
        for i in order:
            parsed = parse_entry(found[i][1])
            if parsed is None or not _usable_head(parsed.headword):
                continue
            text = _cut("; ".join(parsed.senses))
            query = _query(parsed)
            if query in seen or query.lower() == text.lower() or len(text) < 2:
                continue
            seen.add(query)
            chosen.append((i, Pair(query, text, "freedict:" + parsed.headword.lower())))
            if len(chosen) == MAX_PAIRS:
                break
        single: dict[str, str | None] = {}
        for index_head, entry in found:
            # a headword with two entries in one dictionary has two senses there: no single translation
            parsed = parse_entry(entry) if index_head in shared and counts[code][index_head] == 1 else None
            if parsed is None or not _usable_head(parsed.headword):
                continue
            head = parsed.headword.lower()
            single[head] = parsed.senses[0] if head not in single and len(parsed.senses) == 1 else None
        simple[code] = single
        name = LANGUAGES[code]
        spec = task(
            f"freedict_eng_{code}_translation",
            "freedict",
            "translation",
            ("English word", f"retrieving its {name} translation"),
            (f"{name} translation", "retrieval"),
            domain="bilingual dictionary",
            category="retrieval",
        )
        out.append(TaskPairs(spec, [pair for _, pair in sorted(chosen, key=lambda c: c[0])]))
    out += _cross_lingual(simple, rng)
    return out


def _cross_lingual(simple: dict[str, dict[str, str | None]], rng: random.Random) -> list[TaskPairs]:
    if len(simple) < 2:
        return []
    spec = task(
        "freedict_cross_lingual_equivalent",
        "freedict",
        "translation",
        ("word in a European language", "retrieving the word with the same meaning in another language"),
        domain="multilingual dictionary",
        category="sts",
    )
    pairs: list[Pair] = []
    by_head: dict[str, list[str]] = defaultdict(list)
    for code in LANGUAGES:
        for head, text in simple.get(code, {}).items():
            if text is not None:
                by_head[head].append(text)
    for head, texts in by_head.items():
        distinct = list(dict.fromkeys(t for t in texts if len(t) <= 100))
        if len(distinct) < 2:
            continue
        a, b = rng.sample(distinct, 2)
        if a.lower() != b.lower():
            pairs.append(Pair(a, b, "freedict:" + head))
    if len(pairs) > MAX_PAIRS:
        pairs = [pairs[i] for i in sorted(rng.sample(range(len(pairs)), MAX_PAIRS))]
    return [TaskPairs(spec, pairs)] if pairs else []


def locate(root: Path = ROOT) -> dict[str, list[tuple[str, str]]]:
    """Entries of every installed eng-X FreeDict dictionary; :class:`SourceUnavailable` when none is."""
    raw = {}
    for code in LANGUAGES:
        found = read(f"freedict-eng-{code}", root)
        if found is not None:
            raw[code] = found
    if not raw:
        raise SourceUnavailable(
            f"freedict: no FreeDict dictionaries in {root} (apt-get install "
            + " ".join(f"dict-freedict-eng-{c}" for c in LANGUAGES)
            + ")"
        )
    return raw


SOURCE = Source(
    name="freedict",
    licence="GPL-2+ (FreeDict contributors; Debian packaging GPL-3+)",
    install="apt-get install " + " ".join(f"dict-freedict-eng-{c}" for c in LANGUAGES),
    locate=locate,
    build=build,
    debian_packages=tuple(f"dict-freedict-eng-{c}" for c in LANGUAGES),
)

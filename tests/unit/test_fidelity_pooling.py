"""Fidelity to sentence-transformers for every pooling mode x include_prompt, on three tokenizer families.

The reference is sentence-transformers itself (6.3 when written) loading the SAME folder and embedding each
instruction group with ``encode(texts, prompt=instruction)``; ours embeds every row, with its own instruction,
in one mixed call. Every row must have a cosine of at least :data:`MIN_COSINE` with the reference, fp32.

The folders differ from a base checkpoint only in ``1_Pooling/config.json`` (and, where several modes are
concatenated, a Dense layer sized for one mode is left out of ``modules.json``):

- ``bert``: the bundled all-MiniLM-L6-v2 (WordPiece; ``[CLS] ... [SEP]``);
- ``t5``: the tiny T5 the official INSTRUCTOR package saved (``tests/fixtures/instructor_t5``; SentencePiece,
  ``... </s>``), in the plain sentence-transformers layout and without the model card, so nothing marks it as
  INSTRUCTOR and its pooling config alone decides, a Dense 32 -> 16 after single modes;
- ``decoder``: a tiny Qwen3 with a byte-level BPE tokenizer that appends EOS (``tests/checkpoints_decoder.py``).

Both config formats are read: the compact one (``pooling_mode``: a name or an ordered list) and the legacy
``pooling_mode_*`` booleans (concatenated in sentence-transformers' fixed order), with ``include_prompt`` true,
false or absent. :func:`test_the_bar_is_discriminating` shows a wrong mode or a wrong include_prompt scores
well below the bar on these texts.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from instructor_plugins.checkpoint import bundled_model_dir, read_checkpoint
from instructor_plugins.model import InstructorEncoder
from instructor_plugins.pooling import POOLING_MODES

MIN_COSINE = 0.99999
WRONG_MAX_COSINE = 0.9999
OFFICIAL_T5 = Path(__file__).resolve().parents[1] / "fixtures" / "instructor_t5" / "official"
SINGLE = [(mode,) for mode in POOLING_MODES]
# several modes: in legacy order, and (compact format only) in an order of the checkpoint's own
SEVERAL = [("cls", "max", "mean"), ("mean_sqrt_len_tokens", "weightedmean", "lasttoken"), ("lasttoken", "cls")]
FAMILIES = ("bert", "t5", "decoder")
LEGACY_KEYS = {
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
    "mean": "pooling_mode_mean_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}
INSTRUCTIONS = [
    "",
    "query: ",
    "Represent this sentence for searching relevant passages: ",
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:",
]


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")


def pooling_config(dim: int, modes: tuple[str, ...], include_prompt: bool | None, legacy: bool) -> dict[str, Any]:
    if legacy:
        cfg: dict[str, Any] = {"word_embedding_dimension": dim} | {k: m in modes for m, k in LEGACY_KEYS.items()}
    else:
        cfg = {"embedding_dimension": dim, "pooling_mode": modes[0] if len(modes) == 1 else list(modes)}
    if include_prompt is not None:
        cfg["include_prompt"] = include_prompt
    return cfg


def _link_tree(source: Path, root: Path, big: tuple[str, ...]) -> None:
    """Copy ``source`` to ``root``, the weight files as symlinks."""
    shutil.copytree(source, root, ignore=shutil.ignore_patterns(*big))
    for name in big:
        for path in source.rglob(name):
            (root / path.relative_to(source)).symlink_to(path)


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, int]]:
    """The base folder of each family (built on first use) and its token dimension."""
    base = tmp_path_factory.mktemp("pooling-bases")
    made: dict[str, tuple[Path, int]] = {}

    def get(family: str) -> tuple[Path, int]:
        if family in made:
            return made[family]
        root = base / family
        if family == "bert":
            _link_tree(bundled_model_dir(), root, ("model.safetensors",))
            dim = 384
        elif family == "t5":
            from tests.fixtures.make_instructor_t5 import build_hub

            build_hub(OFFICIAL_T5, root)
            (root / "README.md").unlink()  # the model card is what marks the hub layout as INSTRUCTOR
            dim = 32
        else:
            if not Path("/usr/share/wordnet/data.noun").is_file():
                pytest.skip("WordNet is not installed (apt-get install wordnet-base)")
            from tests.checkpoints_decoder import build_tiny_decoder

            build_tiny_decoder(root, arch="qwen3", layout="st")
            dim = 64
        made[family] = (root, dim)
        return made[family]

    return get


@pytest.fixture(scope="module")
def variant(
    tmp_path_factory: pytest.TempPathFactory, bases: Callable[[str], tuple[Path, int]]
) -> Callable[[str, tuple[str, ...], bool | None, bool], Path]:
    """A folder of ``family`` whose pooling config selects ``modes`` with ``include_prompt`` (None: absent)."""
    work = tmp_path_factory.mktemp("pooling-variants")

    def make(family: str, modes: tuple[str, ...], include_prompt: bool | None, legacy: bool) -> Path:
        source, dim = bases(family)
        root = work / f"{family}-{'-'.join(modes) or 'none'}-{include_prompt}-{'legacy' if legacy else 'compact'}"
        if root.exists():
            return root
        _link_tree(source, root, ("model.safetensors", "pytorch_model.bin"))
        write_json(root / "1_Pooling" / "config.json", pooling_config(dim, modes, include_prompt, legacy))
        if not modes:  # no mode selected (legacy booleans all false, or no pooling_mode): ST pools the mean
            cfg = pooling_config(dim, ("mean",), include_prompt, legacy)
            cfg = {k: (False if k.startswith("pooling_mode_") else v) for k, v in cfg.items() if k != "pooling_mode"}
            write_json(root / "1_Pooling" / "config.json", cfg)
        if len(modes) > 1:  # a Dense sized for one mode cannot follow a concatenation: leave it out
            entries = json.loads((root / "modules.json").read_text(encoding="utf-8"))
            write_json(root / "modules.json", [e for e in entries if not e["type"].endswith("Dense")])
        return root

    return make


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Real texts of every length: WordNet glosses, a truncated one, a bare word, odd whitespace."""
    from instructor_plugins.corpora import wordnet_synsets

    try:
        synsets = wordnet_synsets("noun", limit=6000)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    glosses = sorted({s.definition for s in synsets[5000:]}, key=len)
    picked = [glosses[int(q * (len(glosses) - 1))] for q in (0.05, 0.3, 0.6, 0.9, 1.0)]
    return [*picked, synsets[5100].lemmas[0], f"  {glosses[len(glosses) // 2]}\n", " ".join(glosses[-30:])]


def mixed_rows(texts: list[str]) -> tuple[list[str], list[str]]:
    """Every text with every instruction, interleaved so each batch mixes instructions and lengths."""
    rows, instructions = [], []
    for i, text in enumerate(texts):
        for j in range(len(INSTRUCTIONS)):
            rows.append(text)
            instructions.append(INSTRUCTIONS[(i + j) % len(INSTRUCTIONS)])
    return rows, instructions


def st_reference(folder: Path, rows: list[str], instructions: list[str]) -> np.ndarray:
    """sentence-transformers on the same folder, one ``encode(prompt=...)`` per instruction group."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    out = np.zeros((len(rows), model.get_embedding_dimension()), dtype=np.float32)
    for instruction in dict.fromkeys(instructions):
        idx = [i for i, ins in enumerate(instructions) if ins == instruction]
        out[idx] = model.encode([rows[i] for i in idx], prompt=instruction or None, batch_size=8)
    return out


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def cases() -> list[Any]:
    out = []
    for family in FAMILIES:
        for k, modes in enumerate(SINGLE + SEVERAL):
            if modes == ("lasttoken", "cls") and family != "bert":
                continue  # one out-of-order case is enough; it only tests the order of concatenation
            for include_prompt in (True, False):
                legacy = (k + include_prompt) % 2 == 0 and modes != ("lasttoken", "cls")  # both formats, all modes
                fmt = "legacy" if legacy else "compact"
                case_id = f"{family}-{'+'.join(modes)}-include_prompt={include_prompt}-{fmt}"
                out.append(pytest.param(family, modes, include_prompt, legacy, id=case_id))
    return out


@pytest.mark.parametrize(("family", "modes", "include_prompt", "legacy"), cases())
def test_mixed_instructions_match_sentence_transformers(
    variant: Callable[..., Path],
    texts: list[str],
    family: str,
    modes: tuple[str, ...],
    include_prompt: bool,
    legacy: bool,
) -> None:
    folder = variant(family, modes, include_prompt, legacy)
    rows, instructions = mixed_rows(texts)
    encoder = InstructorEncoder.load(folder, device="cpu")
    assert encoder.pooling.modes == modes and encoder.pooling.include_prompt is include_prompt
    got = encoder.encode(rows, instructions, batch_size=8)
    want = st_reference(folder, rows, instructions)
    assert got.shape == want.shape, (got.shape, want.shape)
    cos = cosine_rows(got, want)
    bad = [f"row {i} ({instructions[i]!r}): cos {c:.7f}" for i, c in enumerate(cos) if not c >= MIN_COSINE]
    assert not bad, "differs from sentence-transformers:\n" + "\n".join(bad)


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "compact"])
@pytest.mark.parametrize("include_prompt", [True, False, None], ids=["true", "false", "absent"])
def test_every_config_reads_as_sentence_transformers_reads_it(
    variant: Callable[..., Path], include_prompt: bool | None, legacy: bool
) -> None:
    """The config alone (no forward pass): the modes, their order and include_prompt, for every mode set."""
    from sentence_transformers.sentence_transformer.modules import Pooling

    for modes in [*SINGLE, *SEVERAL, ()]:
        if legacy and modes == ("lasttoken", "cls"):
            continue  # legacy booleans have no order of their own
        folder = variant("bert", modes, include_prompt, legacy)
        theirs = Pooling.load(str(folder / "1_Pooling"))
        want = (theirs.pooling_mode,) if isinstance(theirs.pooling_mode, str) else tuple(theirs.pooling_mode)
        ours = read_checkpoint(folder).pooling
        assert (ours.modes, ours.include_prompt) == (want, theirs.include_prompt), (modes, include_prompt, legacy)
        if include_prompt is None:
            assert "include_prompt absent" in ours.source


def test_the_bar_is_discriminating(variant: Callable[..., Path], texts: list[str]) -> None:
    """A wrong mode or a wrong include_prompt scores well below MIN_COSINE on these texts."""
    rows, instructions = mixed_rows(texts)
    prompted = [i for i, ins in enumerate(instructions) if ins]
    worst = {}
    for family in FAMILIES:
        want = st_reference(variant(family, ("mean",), True, False), rows, instructions)
        for wrong in [(("mean",), False), (("max",), True), (("cls",), True)]:
            got = InstructorEncoder.load(variant(family, wrong[0], wrong[1], False), device="cpu").encode(
                rows, instructions, batch_size=8
            )
            cos = cosine_rows(got[prompted], want[prompted])
            worst[f"{family} {wrong}"] = (float(cos.min()), float(cos.max()))
    print("\nwrong pooling vs mean+include_prompt, (min, max) cos over prompted rows:", worst)
    assert all(low < WRONG_MAX_COSINE for low, _ in worst.values()), worst

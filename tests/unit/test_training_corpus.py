"""The corpus builder: mined negatives, splits without shared text, determinism, manifest, bad input."""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest

from training.medi import load_medi
from training.recipe import CorpusError, RecipeConfig, check_corpus, drop_resume_checkpoints, instruction_variants
from training.recipe import corpus as corpus_mod
from training.recipe import main as recipe_main
from training.recipe.corpus import CorpusConfig, build_corpus, load_rows, mine_negatives
from training.recipe.sources import Pair, SourceUnavailable, get_source

WORDNET = Path("/usr/share/wordnet/data.noun").is_file()


def _fake_embed(vectors: dict[str, list[float]]):
    def embed(texts):
        out = np.array([vectors[t] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    return embed


def test_mined_negative_is_nearest_non_positive_without_near_duplicates_or_label_mates() -> None:
    vectors = {
        "q": [1, 0, 0],
        "pos": [0.9, 0.1, 0],
        "dup": [0.9, 0.1, 0.001],  # near-duplicate of the positive: skipped
        "mate": [0.8, 0.3, 0],  # same label: skipped
        "near": [0.6, 0.6, 0.2],  # the hard negative
        "far": [0, 0, 1],
        "q2": [0, 0, 1],
        "q3": [0, 1, 0],
    }
    pairs = [
        Pair("q", "pos", "k1", label="a"),
        Pair("q2", "dup", "k2", label="b"),
        Pair("q3", "mate", "k3", label="a"),
        Pair("q4", "near", "k4", label="c"),
        Pair("q5", "far", "k5", label="d"),
    ]
    vectors |= {"q4": [0, 1, 1], "q5": [1, 1, 1]}
    negs = mine_negatives(pairs, _fake_embed(vectors), near_duplicate=0.95, rng=random.Random(0))
    assert negs[0] == "near"
    assert all(n != p.pos for n, p in zip(negs, pairs, strict=True))


def test_source_negative_wins() -> None:
    vectors = {"a": [1, 0], "b": [0, 1], "c": [1, 1], "d": [1, -1]}
    negs = mine_negatives([Pair("a", "b", "k", neg="hot"), Pair("c", "d", "j")], _fake_embed(vectors))
    assert negs == ["hot", "b"]


def _small(tmp: Path, **kw) -> CorpusConfig:
    base = {
        "output": str(tmp),
        "sources": ("wordnet", "chatterbot"),
        "holdout": ("chatterbot_same_category",),
        "max_train_per_task": 12,
        "max_eval_per_task": 6,
        "max_holdout_per_task": 10,
    }
    return CorpusConfig(**(base | kw))


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    if not WORDNET:
        pytest.skip("WordNet (Debian wordnet-base) not installed")
    out = tmp_path_factory.mktemp("corpus")
    return out, build_corpus(_small(out))


def test_corpus_files_manifest_and_dataset(small_corpus: tuple[Path, dict]) -> None:
    out, manifest = small_corpus
    assert json.loads((out / "manifest.json").read_text()) == json.loads(json.dumps(manifest))
    assert manifest["held_out_tasks"] == ["chatterbot_same_category"]
    assert len(manifest["trained_tasks"]) == 7
    for t in manifest["tasks"]:
        assert t["query_instruction"].startswith("Represent the ") and t["licence" if False else "task_type"]
        if not t["held_out"]:
            assert t["counts"]["train"] == 12
    assert manifest["counts"]["train"] == 7 * 12
    assert set(manifest["sources"]) == {"wordnet", "chatterbot"} and manifest["skipped"] == {}
    from training.recipe.inputs import debian_version, python_version

    assert manifest["inputs"]["wordnet"]["debian_packages"] == {"wordnet-base": debian_version("wordnet-base")}
    assert manifest["inputs"]["chatterbot"]["python_packages"] == {
        "chatterbot-corpus": python_version("chatterbot-corpus")
    }
    trained = [t for t in manifest["tasks"] if not t["held_out"]]
    assert sum(sum(c.values()) for c in manifest["categories"].values()) == len(trained)
    for t in trained:
        assert manifest["categories"][t["category"]][t["shape"]] >= 1
    rows = load_medi(out / "dataset")  # the DatasetDict that training.train --data reads
    assert len(rows) == 84 and {r.task for r in rows} == set(manifest["trained_tasks"])
    assert rows[0].neg[1] and rows[0].neg[1] != rows[0].pos[1]
    labelled = [r for r in rows if r.label is not None]  # same-label tasks: the loss masks label mates by these
    assert labelled and any(r.neg_label for r in labelled) and all(r.neg_label != r.label for r in labelled)


def test_no_text_shared_across_splits(small_corpus: tuple[Path, dict]) -> None:
    out, _ = small_corpus
    texts = {}
    for split in ("train", "dev", "test"):
        texts[split] = {t for r in load_rows(out, split) for t in (r["query"][1], r["pos"][1])}
    assert not texts["train"] & texts["dev"]
    assert not texts["train"] & texts["test"]


def test_corpus_is_deterministic(small_corpus: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = small_corpus
    build_corpus(_small(tmp_path))
    for split in ("train", "dev", "test"):
        assert (tmp_path / f"{split}.jsonl").read_bytes() == (out / f"{split}.jsonl").read_bytes()


def test_missing_source_is_skipped_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = get_source("chatterbot")

    def gone() -> None:
        raise SourceUnavailable("chatterbot: not installed (pip install chatterbot-corpus)")

    monkeypatch.setattr(corpus_mod, "get_source", lambda name: dataclasses.replace(real, locate=gone))
    with caplog.at_level(logging.WARNING, logger="training.recipe.corpus"):
        manifest = build_corpus(_small(tmp_path, sources=("chatterbot",), mine=False))
    assert manifest["skipped"] == {"chatterbot": "chatterbot: not installed (pip install chatterbot-corpus)"}
    assert [r.message for r in caplog.records] == [
        "skipping source chatterbot: chatterbot: not installed (pip install chatterbot-corpus)"
    ]
    with pytest.raises(CorpusError, match="at least 2"):
        check_corpus(manifest, 4)


def test_task_smaller_than_batch_is_an_error(small_corpus: tuple[Path, dict]) -> None:
    _, manifest = small_corpus
    assert len(check_corpus(manifest, 12)) == 7
    with pytest.raises(CorpusError, match="smaller than the batch size 16"):
        check_corpus(manifest, 16)


def test_recipe_exits_2_before_ray_on_a_bad_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = recipe_main(
        ["--output", str(tmp_path), "--sources", "chatterbot", "--batch-size", "64", "--max-train-per-task", "8"]
    )
    assert code == 2
    assert "smaller than the batch size 64" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("module", ["training.recipe", "training.recipe.corpus"])
def test_sources_help_names_every_source(module: str, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    from training.recipe.sources import DEFAULT_SOURCES, SOURCES

    with pytest.raises(SystemExit):
        importlib.import_module(module).main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in SOURCES)
    opt_in = ", ".join(s for s in SOURCES if s not in DEFAULT_SOURCES)
    assert f"({opt_in}: opt-in, not in the default)" in help_text


def test_recipe_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="wise_alphas"):
        RecipeConfig("x", wise_alphas=(1.5,))
    with pytest.raises(ValueError, match="unknown sources"):
        CorpusConfig("x", sources=("nope",))


def test_instruction_variants_vary_training_rows_only(small_corpus: tuple[Path, dict], tmp_path: Path) -> None:
    out, manifest = small_corpus
    build_corpus(_small(tmp_path, instruction_variants=True))
    canonical = {t["name"]: (t["query_instruction"], t["document_instruction"]) for t in manifest["tasks"]}
    for split in ("dev", "test"):  # evaluation rows keep the canonical wording: byte-identical files
        assert (tmp_path / f"{split}.jsonl").read_bytes() == (out / f"{split}.jsonl").read_bytes()
    plain, varied = load_rows(out, "train"), load_rows(tmp_path, "train")
    assert [(r["query"][1], r["pos"][1], r["neg"][1]) for r in plain] == [
        (r["query"][1], r["pos"][1], r["neg"][1]) for r in varied
    ]  # same texts, same negatives: only the instructions differ
    seen: dict[str, set[tuple[str, str]]] = {}
    for r in varied:
        pair = (r["query"][0], r["pos"][0])
        assert r["neg"][0] == r["pos"][0]
        assert pair == canonical[r["task_name"]] or pair in instruction_variants.VARIANTS[r["task_name"]]
        seen.setdefault(r["task_name"], set()).add(pair)
    assert sum(len(s) for s in seen.values()) > len(seen)  # 12 pairs a task: some task shows several wordings


def test_instruction_negatives_swap_training_negatives_for_other_tasks_positives(
    small_corpus: tuple[Path, dict], tmp_path: Path
) -> None:
    out, _ = small_corpus
    manifest = build_corpus(_small(tmp_path, instruction_negatives=1.0))
    for split in ("dev", "test"):  # evaluation rows keep their mined negatives: byte-identical files
        assert (tmp_path / f"{split}.jsonl").read_bytes() == (out / f"{split}.jsonl").read_bytes()
    plain, swapped = load_rows(out, "train"), load_rows(tmp_path, "train")
    assert [(r["task_name"], r["query"], r["pos"]) for r in plain] == [
        (r["task_name"], r["query"], r["pos"]) for r in swapped
    ]
    positives: dict[tuple[str, str], set[str]] = {}
    for r in plain:
        positives.setdefault((r["task_name"], r["query"][1]), set()).add(r["pos"][1])
    changed: dict[str, int] = {}
    for before, after in zip(plain, swapped, strict=True):
        task, query, neg = after["task_name"], after["query"][1], after["neg"][1]
        others = {p for (t, q), texts in positives.items() if q == query and t != task for p in texts}
        own = positives[(task, query)] | {query}
        if others - own:  # at rate 1 every row that another task offers a positive to takes one
            changed[task] = changed.get(task, 0) + 1
            assert neg in others - own, (task, query, neg)
            assert after["neg"][0] == after["pos"][0]  # the row's own document instruction
        else:
            assert neg == before["neg"][1], (task, query)
    assert sum(changed.values()) > 0
    assert {t["name"]: t["instruction_negatives"] for t in manifest["tasks"] if t["instruction_negatives"]} == changed
    with pytest.raises(ValueError, match="instruction_negatives must be in"):
        _small(tmp_path, instruction_negatives=-0.1)


def test_every_trained_task_has_two_variants_in_the_unified_format() -> None:
    from training.recipe.corpus import DEFAULT_HOLDOUT

    for name, variants in instruction_variants.VARIANTS.items():
        assert name not in DEFAULT_HOLDOUT
        assert len(variants) == 2 and len(set(variants)) == 2
        for query, document in variants:
            assert query.startswith("Represent the ") and query.endswith(": ")
            assert document.startswith("Represent the ") and document.endswith(": ")


def test_variant_pick_is_deterministic_and_uses_every_wording() -> None:
    canonical = ("Represent the word for retrieving its synonyms: ",) * 2
    picks = [instruction_variants.pick("wordnet_synonyms", canonical, f"k{i}") for i in range(60)]
    assert picks == [instruction_variants.pick("wordnet_synonyms", canonical, f"k{i}") for i in range(60)]
    assert set(picks) == {canonical, *instruction_variants.VARIANTS["wordnet_synonyms"]}
    assert picks != [instruction_variants.pick("wordnet_synonyms", canonical, f"k{i}", seed=1) for i in range(60)]


def test_recipe_reuses_a_corpus_built_before_a_setting_existed(
    small_corpus: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from training.recipe import pipeline as recipe

    out, manifest = small_corpus
    cfg = RecipeConfig(
        str(tmp_path),
        sources=("wordnet", "chatterbot"),
        holdout=("chatterbot_same_category",),
        max_train_per_task=12,
        max_eval_per_task=6,
        max_holdout_per_task=10,
        batch_size=4,
    )
    shutil.copytree(out, tmp_path / "corpus")
    old = json.loads(json.dumps(manifest))
    del old["config"]["instruction_variants"]  # written before the setting existed: built with its default
    (tmp_path / "corpus" / "manifest.json").write_text(json.dumps(old))
    monkeypatch.setattr(recipe, "build_corpus", lambda c: pytest.fail("rebuilt a corpus it could reuse"))
    assert recipe._corpus(cfg)["counts"] == manifest["counts"]
    with pytest.raises(pytest.fail.Exception, match="rebuilt"):
        recipe._corpus(dataclasses.replace(cfg, instruction_variants=True))  # another setting: rebuilt


def test_drop_resume_checkpoints_keeps_logs(tmp_path: Path) -> None:
    run_dir = tmp_path / "instructed"
    for name in ("checkpoint_2026-11-28_01-30-53.589198", "checkpoint_2026-11-28_01-31-12.185449"):
        (run_dir / name / "1_Pooling").mkdir(parents=True)
        (run_dir / name / "optimizer.pt").write_bytes(b"x" * 300)
        (run_dir / name / "1_Pooling" / "config.json").write_bytes(b"{}")
    (run_dir / "logs").mkdir()
    (run_dir / "logs" / "steps.rank0.jsonl").write_text("{}\n")
    (run_dir / "checkpoint_manager_snapshot.json").write_text("{}")
    assert drop_resume_checkpoints(run_dir) == 2 * 302
    assert sorted(p.name for p in run_dir.iterdir()) == ["logs"]
    assert (run_dir / "logs" / "steps.rank0.jsonl").is_file()
    assert drop_resume_checkpoints(run_dir) == 0  # idempotent; a missing folder is fine too
    assert drop_resume_checkpoints(tmp_path / "absent") == 0

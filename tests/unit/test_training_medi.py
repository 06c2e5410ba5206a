"""MEDI loading and validation, the sample builder, and the training config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.build_sample import TASKS, build_sample, build_task, hardest_negative
from training.config import TrainConfig
from training.medi import MediError, load_medi, parse_rows, save_medi

ROW = {"query": ["Represent the question: ", "why?"], "pos": ["Represent the answer: ", "because"], "neg": ["", "no"]}


def test_load_json_and_jsonl_with_task_id_or_name(tmp_path: Path):
    rows = [{**ROW, "task_id": 3}, {**ROW, "task_name": "qa"}]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    for name in ("a.json", "a.jsonl"):
        examples = load_medi(tmp_path / name)
        assert [e.task for e in examples] == ["3", "qa"]
        assert examples[0].query == ("Represent the question: ", "why?")
    assert load_medi(tmp_path / "a.json", limit=1)[0].task == "3"


def test_round_trip(tmp_path: Path):
    examples = parse_rows([{**ROW, "task_id": 3}, {**ROW, "task_name": "qa", "label": "x", "neg_label": "y"}])
    assert load_medi(save_medi(examples, tmp_path / "out.json")) == examples


def test_labels_are_optional_and_blank_means_none():
    plain, labelled, blank = parse_rows(
        [
            {**ROW, "task_id": 0},
            {**ROW, "task_id": 0, "label": "section 2", "neg_label": 3},
            {**ROW, "task_id": 0, "label": "", "neg_label": None},  # a datasets column's empty cell
        ]
    )
    assert (plain.label, plain.neg_label) == (None, None)
    assert (labelled.label, labelled.neg_label) == ("section 2", "3")
    assert (blank.label, blank.neg_label) == (None, None)
    assert "label" not in plain.to_row() and labelled.to_row()["neg_label"] == "3"


def test_blank_instructions_ablation():
    (e,) = parse_rows([{**ROW, "task_id": 0}], blank_instructions=True)
    assert e.query == ("", "why?") and e.pos == ("", "because") and e.neg == ("", "no")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({k: v for k, v in ROW.items() if k != "pos"} | {"task_id": 0}, "row 1: missing field 'pos'"),
        (ROW | {"neg": ["only one"], "task_id": 0}, "row 1: field 'neg' must be a"),
        (ROW | {"query": ["i", 5], "task_id": 0}, "row 1: field 'query' must hold two strings"),
        (ROW | {"pos": ["i", "  "], "task_id": 0}, "row 1: field 'pos' has an empty text"),
        (ROW, "row 1: missing field 'task_id'"),
        (ROW | {"task_id": "7"}, "row 1: field 'task_id' must be a non-negative int"),
        (ROW | {"task_name": ""}, "row 1: field 'task_name'"),
        ("not a row", "row 1: expected an object"),
        (ROW | {"task_id": 0, "label": ["a"]}, "row 1: field 'label' must be a string"),
        (ROW | {"task_id": 0, "neg_label": True}, "row 1: field 'neg_label' must be a string"),
    ],
)
def test_bad_rows_name_index_and_field(row, message):
    with pytest.raises(MediError, match=message):
        parse_rows([{**ROW, "task_id": 0}, row])


def test_missing_file_and_empty_data(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        load_medi(tmp_path / "nope.json")
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(MediError, match="no rows"):
        load_medi(tmp_path / "empty.json")


def test_hardest_negative_prefers_word_overlap():
    import random

    got = hardest_negative(
        "the bank of a river", ["a river bank", "a tall mountain", "the bank of a river"], random.Random(0)
    )
    assert got == "a river bank"


def test_sample_builder_makes_valid_multi_task_data_from_real_text(tmp_path: Path):
    pytest.importorskip("chatterbot_corpus")
    if not Path("/usr/share/wordnet/data.noun").exists():
        pytest.skip("WordNet (Debian wordnet-base) not installed")
    train, held = build_sample(per_task=6, holdout="chatterbot_qa", holdout_size=5)
    assert {e.task for e in train} == set(TASKS) - {"chatterbot_qa"} and len(train) == 6 * (len(TASKS) - 1)
    assert len(held) == 5 and {e.task for e in held} == {"chatterbot_qa"}
    for e in train + held:
        assert e.query[0].startswith("Represent the ") and e.query[0].endswith(": ")
        assert e.pos[1] != e.neg[1]
    assert load_medi(save_medi(train, tmp_path / "s.json")) == train
    assert build_task("wordnet_synonyms", 4) == build_task("wordnet_synonyms", 4)  # deterministic
    with pytest.raises(ValueError, match="valid"):
        build_task("nope", 2)


def test_train_config_validation():
    cfg = TrainConfig(data="d.json", output="/tmp/x/out", num_workers=2, batch_size=8, warmup=0.25)
    assert cfg.name == "out" and cfg.total_steps(7) == 7 and cfg.warmup_steps(8) == 2
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig(data="d", output="o", steps=5, epochs=3).total_steps(10) == 5
    assert TrainConfig(data="d", output="o", epochs=1.5).total_steps(10) == 15
    with pytest.raises(ValueError, match="multiple of num_workers 3"):
        TrainConfig(data="d", output="o", num_workers=3, batch_size=8)
    with pytest.raises(ValueError, match="temperature"):
        TrainConfig(data="d", output="o", temperature=0)
    cfg.check_resumable_from(cfg.to_dict() | {"lr": 1.0, "num_workers": 4})  # not part of the batch plan
    with pytest.raises(ValueError, match="batch_size: 16 -> 8"):
        cfg.check_resumable_from(cfg.to_dict() | {"batch_size": 16})
    with pytest.raises(ValueError, match="unknown config keys \\['lr_typo'\\]"):
        TrainConfig.from_dict({"data": "d", "output": "o", "lr_typo": 1})


def test_cli_flags_map_to_the_config(tmp_path: Path):
    from training.train import parse_args

    cfg = parse_args(
        ["--data", "d.json", "--output", str(tmp_path / "o"), "--num-workers", "4", "--batch-size", "64"]
        + ["--steps", "10", "--temperature", "0.05", "--cross-device-negatives", "--grad-cache-chunk", "8"]
        + ["--no-instructions", "--no-bidirectional", "--max-seq-length", "32", "--warmup", "2"]
    )
    assert (cfg.num_workers, cfg.batch_size, cfg.steps, cfg.temperature) == (4, 64, 10, 0.05)
    assert cfg.cross_device_negatives and cfg.grad_cache_chunk == 8 and cfg.no_instructions
    assert not cfg.bidirectional and cfg.max_seq_length == 32 and cfg.warmup_steps(10) == 2
    with pytest.raises(SystemExit):
        parse_args(["--data", "d.json", "--output", "o", "--num-workers", "3", "--batch-size", "8"])


def test_load_from_object_storage_as_from_a_local_file(tmp_path: Path):
    from tests.s3 import s3_server, upload

    rows = [
        {"query": ["Q: ", f"q{i}"], "pos": ["D: ", f"p{i}"], "neg": ["D: ", f"n{i}"], "task_id": i % 2}
        for i in range(6)
    ]
    local_json = tmp_path / "medi.json"
    local_json.write_text(json.dumps(rows))
    local_jsonl = tmp_path / "medi.jsonl"
    local_jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with s3_server("medi-bucket"):
        upload(local_json, "s3://medi-bucket/data/medi.json")
        upload(local_jsonl, "s3://medi-bucket/data/medi.jsonl")
        from_json = load_medi("s3://medi-bucket/data/medi.json", limit=4)
        from_jsonl = load_medi("s3://medi-bucket/data/medi.jsonl", blank_instructions=True)
        with pytest.raises(FileNotFoundError, match="MEDI file not found: s3://medi-bucket/data/missing.jsonl"):
            load_medi("s3://medi-bucket/data/missing.jsonl")
    assert from_json == load_medi(local_json, limit=4) and len(from_json) == 4
    assert from_jsonl == load_medi(local_jsonl, blank_instructions=True) and len(from_jsonl) == 6
    assert from_jsonl[0].query == ("", "q0")
    assert load_medi(f"file://{local_jsonl}") == load_medi(local_jsonl)

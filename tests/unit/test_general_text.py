"""General text for the distillation: Wikipedia paragraphs, the per-step stream, the step, the settings."""

from __future__ import annotations

import bz2
import copy
import json

import boto3
import pytest
import torch

from training.config import TrainConfig
from training.recipe import RecipeConfig
from training.regularizers.distill import general_step, similarity_distillation, teacher_embeddings
from training.regularizers.general_text import read_texts, step_texts, wikipedia_paragraphs, write_texts

from .test_training_loss import _grads

pytest.importorskip("gensim")

_DUMP = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">
<page><title>Alpha</title><ns>0</ns><id>1</id><revision><id>11</id><text xml:space="preserve">
'''Alpha''' is the first letter of the [[Greek alphabet|Greek]] alphabet, used in words and numbers alike since \
antiquity by scribes, merchants and mathematicians across the whole of the eastern Mediterranean world for many \
centuries.{{citation needed}}

==History==
* a list item that is long enough to pass the word count if lists were kept in the output of the parser at all

The letter was derived from the Phoenician letter aleph, which represented a glottal stop and an ox head, and \
it was adapted by the Greeks to write a vowel sound in their own language.
</text></revision></page>
<page><title>Beta</title><ns>0</ns><id>2</id><revision><id>12</id><text xml:space="preserve">#REDIRECT [[Alpha]]
</text></revision></page>
</mediawiki>
"""


def test_paragraphs_of_a_small_dump(tmp_path):
    path = tmp_path / "dump.xml.bz2"
    path.write_bytes(bz2.compress(_DUMP.encode()))
    got = wikipedia_paragraphs(path, min_words=20, max_words=12)
    assert got == [
        "Alpha is the first letter of the Greek alphabet, used in words",
        "The letter was derived from the Phoenician letter aleph, which represented a",
    ]  # markup stripped, the list, the heading and the redirect dropped, each cut to 12 words


def test_bundled_wikipedia_sample():
    texts = wikipedia_paragraphs()
    assert len(texts) > 4000 and len(set(texts)) == len(texts)
    assert all(30 <= len(t.split()) <= 64 for t in texts) and max(len(t.split()) for t in texts) == 64
    assert not [t for t in texts if "[[" in t or "{{" in t or "==" in t or "<ref" in t]


def test_read_texts_jsonl_and_lines(tmp_path):
    path = write_texts(["one text", "two\ttexts é"], tmp_path / "g" / "texts.jsonl")
    assert read_texts(str(path)) == ["one text", "two\ttexts é"]
    plain = tmp_path / "plain.txt"
    plain.write_text("first line\n\n  second line  \n", encoding="utf-8")
    assert read_texts(str(plain)) == ["first line", "second line"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: a JSONL row needs a non-empty 'text'"):
        read_texts(str(bad))
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no texts"):
        read_texts(str(tmp_path / "empty.txt"))
    with pytest.raises(FileNotFoundError, match="general texts not found"):
        read_texts(str(tmp_path / "missing.jsonl"))


def test_read_texts_from_s3(s3_endpoint):
    body = "".join(json.dumps({"text": t}) + "\n" for t in ("alpha beta", "gamma delta"))
    boto3.client("s3").put_object(Bucket="test-bucket", Key="general/texts.jsonl", Body=body.encode())
    assert read_texts("s3://test-bucket/general/texts.jsonl") == ["alpha beta", "gamma delta"]


def test_step_texts_stream():
    texts = [f"t{i}" for i in range(10)]
    a = step_texts(texts, step=0, rank=0, per_worker=3, world=2, seed=5)
    b = step_texts(texts, step=0, rank=1, per_worker=3, world=2, seed=5)
    assert a == step_texts(texts, step=0, rank=0, per_worker=3, world=2, seed=5)  # a function of its arguments
    assert not set(a) & set(b)  # workers get their own slices
    first_pass = [t for s in range(5) for t in step_texts(texts, step=s, rank=0, per_worker=2, world=1, seed=5)]
    assert sorted(first_pass) == texts  # every text once before any repeats
    assert first_pass != step_texts(texts, step=0, rank=0, per_worker=10, world=1, seed=6)
    with pytest.raises(ValueError, match="per_worker >= 1"):
        step_texts(texts, step=0, rank=0, per_worker=0, world=1, seed=0)


def test_general_step_equals_the_term_by_hand(bundled_encoder):
    texts = [
        "The river floods the valley every spring.",
        "A violin has four strings tuned in fifths.",
        "Interest rates rose for the third month in a row.",
        "The comet returns to the inner solar system every 76 years.",
        "Bread rises because yeast produces carbon dioxide.",
        "The treaty ended a war that had lasted thirty years.",
    ]
    instruction = "Represent the dictionary definition for retrieval: "
    features = bundled_encoder.tokenize(texts, [instruction] * len(texts))
    targets = teacher_embeddings(bundled_encoder, texts)
    stepped, by_hand = copy.deepcopy(bundled_encoder.module).eval(), copy.deepcopy(bundled_encoder.module).eval()
    term = general_step(stepped, features, targets, weight=0.5, temperature=0.05)
    want = similarity_distillation(by_hand(features), targets, temperature=0.05)
    (0.5 * want).backward()
    assert term.item() == pytest.approx(want.item(), rel=1e-5) and term.item() > 0  # the instruction moves them
    grads, want_grads = _grads(stepped), _grads(by_hand)
    for name, g in want_grads.items():
        torch.testing.assert_close(grads[name], g, rtol=1e-5, atol=1e-7, msg=name)
    plain = bundled_encoder.tokenize(texts, [""] * len(texts))
    module = copy.deepcopy(bundled_encoder.module).eval()
    same = general_step(module, plain, targets, weight=1.0, temperature=0.05)
    assert same.item() < 1e-6  # the base model without instruction is its own teacher


def test_settings(tmp_path):
    with pytest.raises(ValueError, match="distill_texts needs distill_weight > 0"):
        TrainConfig(data="d", output="o", distill_texts="g.jsonl")
    with pytest.raises(ValueError, match="at least 3 per worker"):
        TrainConfig(data="d", output="o", distill_weight=1.0, distill_texts="g.jsonl", distill_texts_per_step=4)
    texts = write_texts(["x"], tmp_path / "g.jsonl")
    cfg = TrainConfig(data="d", output="o", distill_weight=1.0, distill_texts="g.jsonl", distill_texts_per_step=6)
    assert TrainConfig(**{**cfg.to_dict(), "distill_texts": str(texts)}).resolved().distill_texts == str(texts)
    recipe = RecipeConfig(output=str(tmp_path))
    assert recipe.distill_general == 16 and recipe.general_text_path() == str(tmp_path.resolve() / "general_text.jsonl")
    train = recipe.train_config(no_instructions=True, distill_texts=recipe.general_text_path())
    assert (train.distill_texts, train.distill_texts_per_step) == (recipe.general_text_path(), 16)
    assert RecipeConfig(output=str(tmp_path), distill_general=0).general_text_path() is None
    assert RecipeConfig(output=str(tmp_path), distill_weight=0).general_text_path() is None
    with pytest.raises(ValueError, match="distill_general must be >= 0"):
        RecipeConfig(output=str(tmp_path), distill_general=-1)
    with pytest.raises(ValueError, match="at least 3 per worker"):  # checked before the corpus is built
        RecipeConfig(output=str(tmp_path), distill_general=2)


def test_recipe_writes_the_general_texts_or_skips_them_in_one_line(tmp_path, monkeypatch, caplog):
    from training.recipe import pipeline as recipe
    from training.regularizers import general_text

    cfg = RecipeConfig(output=str(tmp_path / "run"))
    path = recipe._general_text(cfg)
    assert path == cfg.general_text_path() and len(read_texts(path)) == len(wikipedia_paragraphs())
    assert recipe._general_text(RecipeConfig(output=str(tmp_path / "off"), distill_general=0)) is None

    def unavailable() -> list[str]:
        raise general_text.GeneralTextUnavailable("gensim is not installed")

    monkeypatch.setattr(general_text, "wikipedia_paragraphs", unavailable)
    with caplog.at_level("WARNING", logger="training.recipe"):
        assert recipe._general_text(RecipeConfig(output=str(tmp_path / "missing"))) is None
    assert [r.getMessage() for r in caplog.records] == [
        "general text: skipped (gensim is not installed); the distillation covers the batches' documents only"
    ]
    assert not (tmp_path / "missing" / "general_text.jsonl").exists()

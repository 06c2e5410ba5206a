from __future__ import annotations

import doctest
import os
import tempfile

os.environ.setdefault("MTEB_CACHE", os.path.join(tempfile.gettempdir(), "mteb-cache-tests"))  # before mteb import

import pytest

from evals import offline_data
from evals.instructions import OFFLINE_INSTRUCTIONS
from evals.offline_data import chatterbot_qa, lee_sts, newsgroups, polarity, train_test_split, wordnet_definitions
from evals.tasks import OFFLINE_TASKS, offline_task, offline_tasks
from instructor_plugins.corpora import WORDNET_DIR

needs_wordnet = pytest.mark.skipif(not (WORDNET_DIR / "data.noun").is_file(), reason="Debian wordnet-base missing")


def test_lee_sts_has_every_rated_pair() -> None:
    pairs = lee_sts()
    assert len(pairs.score) == 50 * 49 // 2
    assert all(0.0 <= s <= 1.0 for s in pairs.score)
    assert all(a != b for a, b in zip(pairs.sentence1, pairs.sentence2, strict=True))
    assert len(lee_sts(5).score) == 10
    assert min(pairs.score) < 0.3 < 0.7 < max(pairs.score)  # real spread of human ratings


def test_polarity_split_is_balanced_and_disjoint() -> None:
    data = polarity()
    assert len(data.texts) == 200 and sum(data.labels) == 100
    train, test = train_test_split(data)
    assert len(train.texts) == len(test.texts) == 100
    assert sum(train.labels) == sum(test.labels) == 50
    assert not set(train.texts) & set(test.texts)
    small = polarity(10)
    assert len(small.texts) == 10 and sum(small.labels) == 5


def test_newsgroups_unpickles_without_sklearn_and_drops_headers() -> None:
    data = newsgroups()
    assert data.label_names == ["alt.atheism", "sci.space"]
    assert len(data.texts) == 200 and sorted(set(data.labels)) == [0, 1]
    assert not any(t.startswith(("From:", "Path:", "Newsgroups:")) for t in data.texts)
    assert all(0 < len(t) <= 2000 for t in data.texts)


def test_chatterbot_judgements_point_into_the_corpus() -> None:
    data = chatterbot_qa()
    assert len(data.queries) > 500 and len(data.corpus) > 500
    assert set(data.relevant) == set(data.queries)
    assert all(docs <= set(data.corpus) for docs in data.relevant.values())
    assert len(chatterbot_qa(20).queries) == 20


@needs_wordnet
def test_wordnet_definitions() -> None:
    data = wordnet_definitions(400, 100)
    assert len(data.corpus) == 400 and len(data.queries) == 100
    assert all(docs and docs <= set(data.corpus) for docs in data.relevant.values())
    assert len(set(data.queries.values())) == len(data.queries)  # one query per word


def test_every_offline_task_has_honest_metadata_and_an_instruction() -> None:
    assert set(OFFLINE_TASKS) == set(OFFLINE_INSTRUCTIONS)
    for cls in OFFLINE_TASKS.values():
        meta = cls.metadata
        assert meta.description and meta.reference and meta.license and meta.dataset["revision"]
        assert meta.eval_langs == ["eng-Latn"]


@needs_wordnet
def test_tasks_load_small_subsamples() -> None:
    tasks = {t.metadata.name: t for t in offline_tasks(max_items=6)}
    for task in tasks.values():
        task.load_data()
        assert task.data_loaded
    assert len(tasks["LeeNewsSTS"].dataset["test"]) == 15
    assert tasks["PangLeePolarityClassification"].dataset["train"].num_rows == 4  # 2 per label
    assert len(tasks["MiniNewsgroupsClustering"].dataset["test"]["sentences"][0]) == 6
    split = tasks["ChatterbotQARetrieval"].dataset["default"]["test"]
    assert len(split["queries"]) == 6 and set(split["relevant_docs"]) == set(split["queries"]["id"])


def test_unknown_task_and_bad_size() -> None:
    with pytest.raises(KeyError, match="LeeNewsSTS"):
        offline_task("LeeNews")
    with pytest.raises(ValueError, match="max_items"):
        offline_task("LeeNewsSTS", max_items=1)


def test_doctests() -> None:
    result = doctest.testmod(offline_data)
    assert result.attempted > 0 and result.failed == 0, result  # examples ran, and passed

"""The ``offline`` suite: mteb tasks over real third-party text that installs without any hub.

- ``LeeNewsSTS`` (STS): 50 news documents, 1,225 human-rated pairs (gensim test data).
- ``PangLeePolarityClassification`` (Classification): 200 movie-review snippets, pos/neg (gensim).
- ``MiniNewsgroupsClustering`` (Clustering): 200 posts, alt.atheism vs sci.space (gensim).
- ``ChatterbotQARetrieval`` (Retrieval): 749 questions, 871 answers (chatterbot-corpus).
- ``WordNetDefinitionRetrieval`` (Retrieval): ~500 words, 2,000 noun definitions (WordNet 3.0).

The data builders are in :mod:`evals.offline_data`. Every task takes ``max_items`` to subsample
(documents, snippets, posts or queries) for quick runs; results from a subsample are not
comparable with full runs.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from datasets import Dataset, DatasetDict
from mteb.abstasks import AbsTask
from mteb.abstasks.classification import AbsTaskClassification
from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.task_metadata import TaskMetadata

from evals import offline_data

__all__ = [
    "OFFLINE_TASKS",
    "ChatterbotQARetrieval",
    "LeeNewsSTS",
    "MiniNewsgroupsClustering",
    "PangLeePolarityClassification",
    "WordNetDefinitionRetrieval",
    "offline_task",
    "offline_tasks",
]


def _version(dist: str) -> str:
    try:
        return f"{dist}=={importlib.metadata.version(dist)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{dist} (not installed)"


_COMMON: dict[str, Any] = {
    "eval_splits": ["test"],
    "eval_langs": ["eng-Latn"],
    "dialect": [],
    "modalities": ["text"],
}
_GENSIM_NOTE = (
    " Shipped in gensim's test data (the gensim package is LGPL-2.1); the original data set states no license."
)


class _Subsampled(AbsTask):
    """Adds ``max_items`` (subsample size; ``None`` = full data) to a task's constructor."""

    def __init__(self, max_items: int | None = None, **kwargs: Any) -> None:
        if max_items is not None and max_items < 4:
            raise ValueError(f"max_items must be >= 4 or None, got {max_items}")
        self.max_items = max_items
        super().__init__(**kwargs)


class LeeNewsSTS(_Subsampled, AbsTaskSTS):
    """Document similarity on the Lee news corpus: cosine vs the mean human rating of each pair."""

    metadata = TaskMetadata(
        name="LeeNewsSTS",
        description=(
            "50 short Australian news documents (Lee, Pincombe & Welsh 2005); every one of the 1,225 document "
            "pairs has the mean similarity rating of human judges, scaled to 0-1." + _GENSIM_NOTE
        ),
        reference="https://escholarship.org/uc/item/48g155nq",
        dataset={"path": "gensim/test/test_data/lee.cor+similarities0-1.txt", "revision": _version("gensim")},
        type="STS",
        category="t2t",
        main_score="cosine_spearman",
        date=None,
        domains=["News", "Written"],
        task_subtypes=[],
        license="not specified",
        annotations_creators="human-annotated",
        sample_creation="found",
        bibtex_citation=(
            "@inproceedings{lee2005empirical, title={An empirical evaluation of models of text document "
            "similarity}, author={Lee, Michael D. and Pincombe, Brandon and Welsh, Matthew}, "
            "booktitle={Proceedings of the Annual Meeting of the Cognitive Science Society}, year={2005}}"
        ),
        **_COMMON,
    )
    min_score = 0
    max_score = 1

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Build the pair list (``max_items`` limits the documents, so pairs grow quadratically)."""
        pairs = offline_data.lee_sts(self.max_items)
        self.dataset = DatasetDict(
            {
                "test": Dataset.from_dict(
                    {"sentence1": pairs.sentence1, "sentence2": pairs.sentence2, "score": pairs.score}
                )
            }
        )
        self.data_loaded = True


class PangLeePolarityClassification(_Subsampled, AbsTaskClassification):
    """Sentiment of movie-review snippets; a logistic regression on the embeddings (mteb's protocol)."""

    metadata = TaskMetadata(
        name="PangLeePolarityClassification",
        description=(
            "200 movie-review snippets from Pang & Lee's sentence polarity data (100 positive, 100 negative), "
            "split alternately per label into 100 train / 100 test." + _GENSIM_NOTE
        ),
        reference="https://www.cs.cornell.edu/people/pabo/movie-review-data/",
        dataset={"path": "gensim/test/test_data/pang_lee_polarity.cor", "revision": _version("gensim")},
        type="Classification",
        category="t2c",
        main_score="accuracy",
        date=None,
        domains=["Reviews", "Written"],
        task_subtypes=["Sentiment/Hate speech"],
        license="not specified",
        annotations_creators="derived",
        sample_creation="found",
        bibtex_citation=(
            "@inproceedings{pang2005seeing, title={Seeing stars: Exploiting class relationships for sentiment "
            "categorization with respect to rating scales}, author={Pang, Bo and Lee, Lillian}, "
            "booktitle={Proceedings of ACL}, year={2005}}"
        ),
        **_COMMON,
    )
    samples_per_label = 32
    n_experiments = 10

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Split the snippets into train and test."""
        train, test = offline_data.train_test_split(offline_data.polarity(self.max_items))
        self.dataset = DatasetDict(
            {
                "train": Dataset.from_dict({"text": train.texts, "label": train.labels}),
                "test": Dataset.from_dict({"text": test.texts, "label": test.labels}),
            }
        )
        self.data_loaded = True


class MiniNewsgroupsClustering(_Subsampled, AbsTaskClusteringLegacy):
    """Cluster 20 Newsgroups posts by group (k-means, V-measure)."""

    metadata = TaskMetadata(
        name="MiniNewsgroupsClustering",
        description=(
            "200 posts of the 20 Newsgroups data (Lang 1995), 100 each from alt.atheism and sci.space, with the "
            "header block removed (subject kept) and cut to 2,000 characters; one clustering set of two groups. "
            "A few bodies quote other posts' headers, group name included." + _GENSIM_NOTE
        ),
        reference="http://qwone.com/~jason/20Newsgroups/",
        dataset={"path": "gensim/test/test_data/mini_newsgroup", "revision": _version("gensim")},
        type="Clustering",
        category="t2c",
        main_score="v_measure",
        date=("1993-01-01", "1993-12-31"),
        domains=["Web", "Social", "Written"],
        task_subtypes=["Thematic clustering"],
        license="not specified",
        annotations_creators="derived",
        sample_creation="found",
        bibtex_citation=(
            "@inproceedings{lang1995newsweeder, title={NewsWeeder: Learning to filter netnews}, "
            "author={Lang, Ken}, booktitle={Proceedings of ICML}, year={1995}}"
        ),
        **_COMMON,
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """One clustering set with every post."""
        data = offline_data.newsgroups(self.max_items)
        self.dataset = DatasetDict({"test": Dataset.from_dict({"sentences": [data.texts], "labels": [data.labels]})})
        self.data_loaded = True


def _retrieval_split(data: offline_data.RetrievalData) -> RetrievalSplitData:
    return RetrievalSplitData(
        queries=Dataset.from_list([{"id": qid, "text": text} for qid, text in data.queries.items()]),
        corpus=Dataset.from_list([{"id": did, "text": text} for did, text in data.corpus.items()]),
        relevant_docs={qid: dict.fromkeys(sorted(docs), 1) for qid, docs in data.relevant.items()},
        top_ranked=None,
    )


class ChatterbotQARetrieval(_Subsampled, AbsTaskRetrieval):
    """Find the answer of a chatterbot question among all answers of the corpus."""

    metadata = TaskMetadata(
        name="ChatterbotQARetrieval",
        description=(
            "Question -> answer retrieval over the English chatterbot-corpus (21 categories of hand-written "
            "conversations): 749 distinct questions, 871 distinct answers; the first answer of every conversation "
            "that starts with a question is relevant to it."
        ),
        reference="https://github.com/gunthercox/chatterbot-corpus",
        dataset={"path": "chatterbot_corpus/data/english/*.yml", "revision": _version("chatterbot-corpus")},
        type="Retrieval",
        category="t2t",
        main_score="ndcg_at_10",
        date=None,
        domains=["Spoken", "Written"],
        task_subtypes=["Question answering"],
        license="bsd-3-clause",
        annotations_creators="human-annotated",
        sample_creation="created",
        bibtex_citation="",
        **_COMMON,
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Queries, corpus and judgements (``max_items`` limits the questions)."""
        self.dataset = {"default": {"test": _retrieval_split(offline_data.chatterbot_qa(self.max_items))}}
        self.data_loaded = True


class WordNetDefinitionRetrieval(_Subsampled, AbsTaskRetrieval):
    """Find a word's dictionary definition among WordNet noun glosses."""

    metadata = TaskMetadata(
        name="WordNetDefinitionRetrieval",
        description=(
            "Word -> definition retrieval on WordNet 3.0 (Debian wordnet-base): 2,000 noun synsets evenly spaced "
            "through data.noun form the corpus (definition = gloss without examples); about 500 of their first "
            "lemmas are the queries; every corpus synset with the query word as a lemma is relevant."
        ),
        reference="https://wordnet.princeton.edu/",
        dataset={"path": "/usr/share/wordnet/data.noun", "revision": "WordNet-3.0"},
        type="Retrieval",
        category="t2t",
        main_score="ndcg_at_10",
        date=None,
        domains=["Non-fiction", "Written"],
        task_subtypes=[],
        license="https://wordnet.princeton.edu/license-and-commercial-use",
        annotations_creators="expert-annotated",
        sample_creation="found",
        bibtex_citation=(
            "@article{miller1995wordnet, title={WordNet: a lexical database for English}, author={Miller, George A.}, "
            "journal={Communications of the ACM}, volume={38}, number={11}, pages={39--41}, year={1995}}"
        ),
        **_COMMON,
    )
    n_docs = 2000
    n_queries = 500

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Queries, corpus and judgements (``max_items`` limits the queries; the corpus is 4x that)."""
        if self.max_items is None:
            data = offline_data.wordnet_definitions(self.n_docs, self.n_queries)
        else:
            data = offline_data.wordnet_definitions(min(self.n_docs, 4 * self.max_items), self.max_items)
        self.dataset = {"default": {"test": _retrieval_split(data)}}
        self.data_loaded = True


OFFLINE_TASKS: dict[str, type[_Subsampled]] = {
    cls.metadata.name: cls
    for cls in (
        LeeNewsSTS,
        PangLeePolarityClassification,
        MiniNewsgroupsClustering,
        ChatterbotQARetrieval,
        WordNetDefinitionRetrieval,
    )
}


def offline_task(name: str, *, max_items: int | None = None) -> AbsTask:
    """One offline task by name.

    Raises:
        KeyError: ``name`` is not an offline task (the message lists them).
    """
    if name not in OFFLINE_TASKS:
        raise KeyError(f"unknown offline task {name!r}; valid: {sorted(OFFLINE_TASKS)}")
    return OFFLINE_TASKS[name](max_items=max_items)


def offline_tasks(*, max_items: int | None = None) -> list[AbsTask]:
    """The whole ``offline`` suite."""
    return [cls(max_items=max_items) for cls in OFFLINE_TASKS.values()]

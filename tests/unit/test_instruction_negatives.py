"""Cross-task negatives (training.recipe.instruction_negatives): another task's positive of the same query text."""

from __future__ import annotations

import pytest

from training.recipe.instruction_negatives import instruction_negatives
from training.recipe.sources import Pair


def _tasks() -> dict[str, tuple[list[Pair], list[str]]]:
    to_de = [Pair("grinning face", "grinsendes Gesicht", "k1"), Pair("red heart", "rotes Herz", "k2")]
    to_it = [Pair("grinning face", "faccina con un gran sorriso", "k1"), Pair("cat", "gatto", "k3")]
    # "red heart" has two positives in its own task: neither may become its negative
    same = [Pair("red heart", "rotes Herz", "k2"), Pair("red heart", "heart suit", "k2"), Pair("dog", "wolf", "k4")]
    return {
        "to_de": (to_de, ["mined-de-1", "mined-de-2"]),
        "to_it": (to_it, ["mined-it-1", "mined-it-2"]),
        "same": (same, ["mined-s-1", "mined-s-2", "mined-s-3"]),
    }


def test_every_eligible_row_gets_another_tasks_positive_at_rate_one() -> None:
    negs, changed = instruction_negatives(_tasks(), 1.0)
    assert negs["to_de"] == ["faccina con un gran sorriso", "heart suit"]  # "rotes Herz" is its own positive
    assert negs["to_it"] == ["grinsendes Gesicht", "mined-it-2"]  # "cat" is in no other task
    assert negs["same"] == ["mined-s-1", "mined-s-2", "mined-s-3"]  # other tasks' positives are its own ones
    assert changed == {"to_de": 2, "to_it": 1, "same": 0}


def test_rate_zero_changes_nothing_and_a_share_changes_about_that_share() -> None:
    tasks = _tasks()
    negs, changed = instruction_negatives(tasks, 0.0)
    assert negs == {name: list(n) for name, (_, n) in tasks.items()} and sum(changed.values()) == 0
    # 400 eligible rows: a query shared by two tasks, each task's row gets the other's positive or keeps its own
    a = [Pair(f"q{i}", f"a{i}", f"k{i}") for i in range(400)]
    b = [Pair(f"q{i}", f"b{i}", f"k{i}") for i in range(400)]
    many = {"a": (a, ["mined"] * 400), "b": (b, ["mined"] * 400)}
    negs, changed = instruction_negatives(many, 0.5, seed=3)
    assert 150 < changed["a"] < 250 and 150 < changed["b"] < 250
    assert all(n in ("mined", f"b{i}") for i, n in enumerate(negs["a"]))
    assert instruction_negatives(many, 0.5, seed=3) == (negs, changed)  # deterministic
    assert instruction_negatives(many, 0.5, seed=4)[0] != negs  # the seed picks other rows


def test_bad_input() -> None:
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\]"):
        instruction_negatives(_tasks(), 1.5)
    with pytest.raises(ValueError, match="task x: 1 negatives for 2 pairs"):
        instruction_negatives({"x": ([Pair("a", "b", "k"), Pair("c", "d", "j")], ["n"])}, 0.5)

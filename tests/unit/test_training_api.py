"""``training`` exports the trainer as a library, and importing it loads neither the recipe nor torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

import training


def test_import_training_loads_no_recipe_regulariser_torch_or_ray() -> None:
    code = (
        "import sys, training\n"
        "heavy = [m for m in sys.modules if m.startswith(('training.', 'torch', 'ray'))]\n"
        "print(','.join(sorted(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_the_trainer_modules_load_no_recipe_module() -> None:
    code = (
        "import sys, training.train, training.worker, training.evaluate, training.build_sample\n"
        "opt_in = ('training.recipe', 'training.regularizers')\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith(opt_in))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


@pytest.mark.parametrize("name", training.__all__)
def test_each_public_name_comes_from_its_module(name: str) -> None:
    value = getattr(training, name)
    assert value.__module__.startswith("training.") and value.__name__ == name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'recipe_run'"):
        _ = training.recipe_run

"""``python -m training.recipe``: the whole recipe (see :mod:`training.recipe.pipeline`)."""

from __future__ import annotations

import sys

from training.recipe.pipeline import main

if __name__ == "__main__":
    sys.exit(main())

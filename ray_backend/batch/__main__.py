"""``python -m ray_backend.batch``: the batch embedding job (see :mod:`ray_backend.batch.job`)."""

from __future__ import annotations

import sys

from ray_backend.batch.job import main

if __name__ == "__main__":
    sys.exit(main())

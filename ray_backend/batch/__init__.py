"""Batch embedding of a corpus with Ray Data: the ``python -m ray_backend.batch`` job and its pieces.

- :mod:`ray_backend.batch.job`: the job itself (config, scan, plan, execute, the CLI); its public names are
  re-exported here, so ``from ray_backend.batch import BatchConfig, run_batch`` keeps working.
- :mod:`ray_backend.batch.io`: input files, rows and their checks.
- :mod:`ray_backend.batch.scan`: one pass over an input file (row checks, duplicate ids).
- :mod:`ray_backend.batch.plan`: work units, the plan, shards and the manifest.
- :mod:`ray_backend.batch.lock`: the output lock.
- :mod:`ray_backend.batch.embedder`: :class:`InstructorBatchEmbedder` for a user's own ``ray.data.Dataset``.
"""

from __future__ import annotations

from ray_backend.batch.embedder import InstructorBatchEmbedder
from ray_backend.batch.job import (
    BatchConfig,
    Job,
    Prepared,
    alive_node_count,
    check_cluster,
    check_shared_storage,
    config_from_args,
    execute,
    finish,
    locate,
    main,
    plan,
    prepare,
    run_batch,
    run_in_process,
    scan_local,
    scan_ray,
)

__all__ = [
    "BatchConfig",
    "InstructorBatchEmbedder",
    "Job",
    "Prepared",
    "alive_node_count",
    "check_cluster",
    "check_shared_storage",
    "config_from_args",
    "execute",
    "finish",
    "locate",
    "main",
    "plan",
    "prepare",
    "run_batch",
    "run_in_process",
    "scan_local",
    "scan_ray",
]

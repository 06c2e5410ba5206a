"""MTEB evaluation of instruction-conditioned embeddings: per-task instructions, offline tasks, reports.

Modules: :mod:`evals.instructions` (which instruction per task and side), :mod:`evals.model` (the
mteb encoder), :mod:`evals.meta` (``ModelMeta`` records), :mod:`evals.offline_data` and
:mod:`evals.tasks` (the ``offline`` suite), :mod:`evals.report`, :mod:`evals.run` and
:mod:`evals.compare` (CLIs). Needs the ``evals`` extra (mteb, matplotlib).
"""

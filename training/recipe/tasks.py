"""The recipe's evaluation tasks: one home for the names that the recipe run and its evaluation both use."""

from __future__ import annotations

__all__ = ["HELDOUT_EVAL_TASKS", "HELDOUT_RETRIEVAL", "INDOMAIN_EVAL_TASKS"]

# Offline evals tasks that no training task touches (the chatterbot and WordNet ones are in-domain).
HELDOUT_EVAL_TASKS = ("LeeNewsSTS", "PangLeePolarityClassification", "MiniNewsgroupsClustering")
INDOMAIN_EVAL_TASKS = ("ChatterbotQARetrieval", "WordNetDefinitionRetrieval")
HELDOUT_RETRIEVAL = ("computing_term_to_definition", "manpage_name_to_description")

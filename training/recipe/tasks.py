"""The recipe's evaluation tasks: one home for the names that the recipe run and its evaluation both use."""

from __future__ import annotations

__all__ = ["HELDOUT_EVAL_TASKS", "INDOMAIN_EVAL_TASKS"]

# Offline evals tasks that no training task touches: the held-out gensim source's (see training.recipe.heldout);
# the chatterbot and WordNet ones share a source with training.
HELDOUT_EVAL_TASKS = ("LeeNewsSTS", "PangLeePolarityClassification", "MiniNewsgroupsClustering")
INDOMAIN_EVAL_TASKS = ("ChatterbotQARetrieval", "WordNetDefinitionRetrieval")

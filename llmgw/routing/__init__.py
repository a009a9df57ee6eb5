"""Model selection by task and cost: the task classifier, the selection policies, fallbacks."""

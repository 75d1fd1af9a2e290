"""The pipeline's stages, named once: their order, and the pipelines a job may run."""

from __future__ import annotations

# In pipeline order: each stage consumes the previous one's output.
STAGES = ("extraction", "analysis", "enrichment")

# The valid stage lists are exactly the ordered prefixes of STAGES.
VALID_PIPELINES = tuple(list(STAGES[: n + 1]) for n in range(len(STAGES)))

"""Analysis stage: the per-candidate DFT records collected into one table, novelty, the report."""

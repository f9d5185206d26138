"""Scoring a synthetic pool and choosing from it: pool scores, the sampler registry, quotas, the RL policy."""

"""Learners: what turns one rollout's batch into new parameters (see learners/base.py)."""

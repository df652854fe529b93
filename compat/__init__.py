"""The compatibility suite: Redis clients through amr and against the engine itself (compat/run.py)."""

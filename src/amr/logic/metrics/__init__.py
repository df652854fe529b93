"""Metric collection decisions: reading a node's INFO, per-interval deltas, Azure's metrics."""

"""Metric alerts: validating rules, deciding fire/resolve, rendering the common alert schema."""

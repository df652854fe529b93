"""`amr monitord`: metric collection into its own store (and, later, alerts)."""

"""Where a database's shards, slots and nodes go: ports, resharding moves, foreign nodes."""

"""The gateway's decisions: the auth phase, routing by slot, streaming, reply merging, primaries, listeners."""

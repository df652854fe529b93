"""High availability: failover and demotion plans, the HA watch, how a node of an HA database starts."""

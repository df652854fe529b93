"""What the reconciler decides: node targets and actions, events, lifecycle states, rolling restarts, recovery, conversion."""

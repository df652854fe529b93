"""Keys and hash slots: what every cluster-aware part of amr shares."""

"""amr.gateway: the data-plane endpoint (TLS, routing, splice to the nodes)."""

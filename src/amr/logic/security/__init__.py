"""Secrets, access and trust: per-database node credentials, firewall ranges, failed-auth guards, token claims and throttling, AMR_HOME trust."""

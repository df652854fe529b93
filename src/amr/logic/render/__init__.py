"""Rendering of the files other processes read: valkey.conf, supervisord.conf, routes.json, the HA watch."""

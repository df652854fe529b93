"""Composition root: the only package that picks concrete backends and wires them.

- ``entry``: ``main`` (the ``amr`` console script and ``python -m amr``): service commands here,
  every other command to the HTTPS client in amr.cli.
- ``args``: the service commands' command line.
- ``commands``: ``serve``, ``stop``, ``reload`` and ``pki rotate``.
- ``processes``: ``api``, ``gateway`` and ``ha``, the long-running processes the supervisor runs.
- ``wiring``: the control plane's object graph.

Logging is set up by ``amr.logcontext.configure_logging`` (one format for every process, with the
context fields bound per request, connection and database); settings come only from amr.settings.
"""

from __future__ import annotations

from amr.app.entry import main

__all__ = ["main"]

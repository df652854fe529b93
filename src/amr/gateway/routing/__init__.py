"""The EnterpriseCluster routing proxy: one ``Router`` per authenticated client connection.

Its parts depend downwards only (import-linter keeps it so, see pyproject.toml):

    router                  the client's input: parsing, and running each command's route decision
    big_commands            commands streamed to their node as they arrive, or held from the budget
    commands | txn          special commands (split, fan-out, SCAN, AUTH, WATCH, pub/sub), MULTI/EXEC
    streams                 a connection in pub/sub or MONITOR mode: its node connections' frames
    link_table              which node connection a command goes over, retries, lost connections
    pool                    node connections shared by the clients of one listener
    node_link               a client's own node connection
    owners                  what a node connection may ask of its owner (Protocols)
    replies                 the client's replies: ordering, flush, backpressure
    items | session

The route of a command is decided once, by ``amr.logic.dataplane.route_decision.choose_route``.
"""

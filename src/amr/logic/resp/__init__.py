"""RESP framing: the gateway's request parser and reply scanner, reply frames, and the codec of
amr's own engine clients."""

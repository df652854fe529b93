"""RESP framing: the gateway's request parser, reply frames, and the codec of amr's own engine clients."""

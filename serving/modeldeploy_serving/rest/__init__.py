"""The server's HTTP surface over the protocol-neutral dataplane (../dataplane.py).

`routes.py` is the one route table: every path, the methods it takes, its endpoint and whether
it is counted as an inference call. `v1.py` and `v2.py` are the thin endpoints of KServe V1 and
the Open Inference Protocol: read the body (`body.py`), parse it with the protocol's codec
(../protocol_v1.py, ../protocol_v2.py), ask the dataplane, encode its answer. `types.py` names
the ASGI shapes they share. The request cycle itself (refusals, responses, request metrics) is
the application's (../app.py).
"""

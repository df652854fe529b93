"""The quick start's client: an unmodified redis-py program, configured from the environment.

Run after: eval "$(amr redisenterprise database show-connection --cluster-name amr-lab -g rg-amr-lab --format env)"
"""

import os

import redis

r = redis.Redis(
    host=os.environ["AMR_HOST"],
    port=int(os.environ["AMR_PORT"]),
    password=os.environ["AMR_PASSWORD"],
    ssl=True,  # verifies the server certificate against SSL_CERT_FILE (the amr CA)
)
print("PING:", r.ping())
print("GET greeting (miss):", r.get("greeting"))
print("SET greeting with a 60 s TTL:", r.set("greeting", "Hello from amr!", ex=60))
print("GET greeting (hit):", r.get("greeting").decode())
print("TTL greeting:", r.ttl("greeting"))

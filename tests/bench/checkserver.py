"""A check API over an existing replica, for the HTTP benchmark: `python -m
tests.bench.checkserver REPLICA KEY PORT [bare]`. With `bare`, the same server stack
answers a fixed JSON body instead: the baseline that shows what the check itself costs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import uvicorn

from connectors.subscriber.access import Access, RateLimiter, TokenSet, token_hash
from connectors.subscriber.api import ConnectorApp
from connectors.subscriber.bench import MEASURE
from connectors.subscriber.subjects import SubjectIds
from connectors.subscriber.view import BlocklistView

_BODY = b'{"status":"clear","measure":"refuse_power_supply"}'
BENCH_TOKEN = "bench-token"  # sent by tests/bench/subscriber.py on every check


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": _BODY})


def main() -> None:
    replica, key, port = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    if sys.argv[4:] == ["bare"]:
        app: Any = bare
    else:
        view = BlocklistView(replica, {MEASURE: SubjectIds.from_file(key)}, (MEASURE,), 86_400.0)
        # The daemon's path: a token checked and a bucket spent on every check, the bucket
        # too deep to ever refuse, so the load is measured, not limited.
        tokens = TokenSet([("bench", token_hash(BENCH_TOKEN))])
        app = ConnectorApp(view, access=Access(tokens, RateLimiter(1e9, 10**9)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

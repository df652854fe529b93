"""One way to talk to the engine: RESP is encoded in one place (amr.logic.resp.frames, through
amr.logic.resp.engine_codec for amr's own clients), and only amr.nodes.engine_client / engine_sync open
connections to nodes for amr's own commands. The gateway's data path (splice, router) forwards client
bytes and is the one other place that speaks RESP."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src" / "amr"


def _files_matching(pattern: str) -> set[str]:
    regex = re.compile(pattern, re.MULTILINE)
    return {
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if regex.search(path.read_text(encoding="utf-8"))
    }


def test_only_the_engine_client_opens_node_connections() -> None:
    # amr.questions connects gateway workers to each other's sockets (and `amr monitord` to theirs),
    # never to a node.
    assert _files_matching(r"open_unix_connection\(") == {"nodes/engine_client.py", "questions.py"}


def test_commands_are_encoded_in_one_place() -> None:
    # reply_merge renders merged *replies* for the router, not commands.
    assert _files_matching(r'b"\*%d\\r\\n"|f"\*\{len\(') == {
        "logic/resp/frames.py",
        "logic/dataplane/reply_merge.py",
    }


def test_replies_are_parsed_by_the_codec_or_the_data_path_only() -> None:
    # The router and the splice scanner frame their clients' commands with hiredis; engine replies
    # go through the codec.
    assert _files_matching(r"^import hiredis|^from hiredis") == {
        "logic/resp/engine_codec.py",
        "gateway/routing/router.py",
        "logic/dataplane/splice_scan.py",
    }
    assert _files_matching(r"^import redis\b|^from redis(\.asyncio|\.exceptions)? import") == set()

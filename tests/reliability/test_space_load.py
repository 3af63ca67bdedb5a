"""The Space under load: 20 concurrent gradio_client sessions x 5 turns each, on loopback.

Every turn is answered; each call to the model sees exactly its own session's earlier turns (messages
carry a per-session token, and the history must equal what that session sent and received); the queue
never runs more replies at once than its concurrency limit. p50 and p95 latency are printed.
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.space.helpers import serve_on_loopback

SESSIONS = 20
TURNS = 5


class CountingResponder:
    """The tiny-model responder, recording each call's history and how many calls run at the same time."""

    def __init__(self, inner):
        self.inner = inner
        self.guard = inner.guard
        self.calls: list[tuple[list[str], str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def respond(self, history, message):
        with self._lock:
            self.calls.append((list(history), message))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(0.02)  # hold the slot a little longer than the tiny model does, so overlaps show
            return self.inner.respond(history, message)
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture
def served(space_app, tiny_responder):  # noqa: F811 - fixtures
    responder = CountingResponder(tiny_responder)
    with serve_on_loopback(space_app, responder) as url:
        yield url, responder


def message(session: int, turn: int) -> str:
    return f"I am user s{session:02d}x and this is my message number {turn}."


def test_twenty_sessions_five_turns(served, space_app, capsys):  # noqa: F811 - fixture
    from gradio_client import Client

    url, responder = served
    barrier = threading.Barrier(SESSIONS, timeout=120)

    def session(i: int) -> tuple[list[str], list[float]]:
        client = Client(url, verbose=False, download_files=False)
        barrier.wait()  # all sessions connected: the turns start together
        replies, latencies = [], []
        for turn in range(1, TURNS + 1):
            start = time.perf_counter()
            replies.append(client.predict(message(i, turn), api_name="/chat")[0])
            latencies.append(time.perf_counter() - start)
        client.close()
        return replies, latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
        results = list(pool.map(session, range(SESSIONS)))
    wall = time.perf_counter() - started

    replies = {i: r for i, (r, _) in enumerate(results)}
    assert all(len(r) == TURNS and all(isinstance(x, str) and x.strip() for x in r) for r in replies.values())
    assert len(responder.calls) == SESSIONS * TURNS
    for history, text in responder.calls:
        i, turn = int(text.split(" s")[1][:2]), int(text.rstrip(".").rsplit(" ", 1)[1])
        expected = [u for t in range(1, turn) for u in (message(i, t), replies[i][t - 1])]
        assert history == expected, f"session {i} turn {turn} saw another history"
    assert 1 <= responder.max_in_flight <= space_app.CONCURRENCY_LIMIT

    latencies = sorted(x for _, lat in results for x in lat)
    p50, p95 = statistics.median(latencies), latencies[int(0.95 * len(latencies)) - 1]
    with capsys.disabled():
        print(
            f"\nSpace load: {SESSIONS} sessions x {TURNS} turns in {wall:.1f} s; latency p50 {p50 * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms; max concurrent replies {responder.max_in_flight} "
            f"(limit {space_app.CONCURRENCY_LIMIT})"
        )

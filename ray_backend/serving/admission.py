"""Admission control for one replica: refuse a request that would wait longer than clients do.

A replica that accepts everything builds a queue longer than its clients' timeout: they give up,
retry, and the replica embeds the abandoned copies too. :class:`Admission` tracks the admitted,
unfinished requests (rows and remaining tokens of each) and a measured cost per token (an
exponentially weighted mean over finished batches of at least :data:`MIN_MEASURED_TOKENS` tokens,
seeded by the replica's warm-up batch). A new request is refused (HTTP 429 with ``Retry-After``) when

- the replica already holds ``max_pending_rows`` rows, or
- it is expected to wait longer than ``max_queue_wait_s`` for other requests' work.

The expected wait follows the replica's scheduling: requests run in sub-batches of ``quantum``
tokens, one piece of each in turn, so they share the encoder like processor sharing. While a new
request of ``w`` tokens is in the replica, each admitted request runs at most as much as it does:
``min(remaining, max(w, quantum))`` tokens. So a 1-text request waits about one piece of a long
request and is not refused because of it, while a long request is refused when others already
hold the replica for longer than the bound. A request's own work is not part of its wait (it is
bounded by ``max_inputs``; an idle replica admits any request). Token counts before tokenization are estimated
from characters (:func:`estimate_tokens`); once a request is tokenized its estimate is replaced by
the real count. Nothing here imports Ray or torch.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ray_backend.serving.api import ApiError

__all__ = ["Admission", "Ticket", "estimate_tokens"]

# Characters per token for the pre-tokenization estimate: English WordPiece / SentencePiece text
# averages 4-5 characters per token; 4 errs on the side of more work (earlier 429s).
_CHARS_PER_TOKEN = 4
# Tokenizing costs too, and for huge strings (a 1 MB text truncated to 512 tokens) it dominates:
# a fast tokenizer reads roughly 500 characters in the time one token is encoded on CPU.
_TOKENIZE_CHARS_PER_TOKEN = 500
# Until a batch was measured: 2,000 tokens/s, about one CPU core on the bundled MiniLM.
_PRIOR_SECONDS_PER_TOKEN = 1 / 2000
_EWMA_WEIGHT = 0.2
# Batches smaller than this are mostly fixed overhead (a 1-text batch costs ~1 ms per token, a
# 2,000-token batch ~0.3 ms): they would make big requests look far slower than they run.
MIN_MEASURED_TOKENS = 256


def estimate_tokens(texts: Sequence[str], instructions: Sequence[str], max_seq_length: int) -> int:
    """Work of ``instruction + text`` rows in encoded-token units, estimated from characters.

    Each row counts its tokens (characters / 4 + 2, capped at ``max_seq_length``) plus the cost of
    tokenizing all its characters (which truncation does not save).
    """
    total = 0
    for i, t in zip(instructions, texts, strict=True):
        chars = len(i) + len(t)
        total += min(max_seq_length, chars // _CHARS_PER_TOKEN + 2) + chars // _TOKENIZE_CHARS_PER_TOKEN
    return total


@dataclass(eq=False)
class Ticket:
    """One admitted request's share of the counters (released when the request ends)."""

    rows: int
    tokens: int


class Admission:
    """Admitted requests and the measured cost per token, shared by one replica's requests.

    Args:
        max_pending_rows: rows held at once before new requests get 429.
        max_queue_wait_s: a request expected to wait longer than this for others' work gets 429.
    """

    def __init__(self, max_pending_rows: int, max_queue_wait_s: float) -> None:
        self.max_pending_rows = max_pending_rows
        self.max_queue_wait_s = max_queue_wait_s
        self.seconds_per_token = _PRIOR_SECONDS_PER_TOKEN
        self.measured = False
        self.refused = 0
        self._tickets: set[Ticket] = set()
        self._lock = threading.Lock()

    @property
    def pending_rows(self) -> int:
        """Rows of admitted, unfinished requests."""
        return sum(t.rows for t in self._tickets)

    @property
    def pending_tokens(self) -> int:
        """Remaining tokens (estimated until tokenized) of admitted, unfinished requests."""
        return sum(t.tokens for t in self._tickets)

    def expected_wait_s(self, tokens: int | None = None, quantum: int = 1) -> float:
        """Seconds a new request of ``tokens`` tokens would spend on others' work (``None``: all admitted work)."""
        if tokens is None:
            return self.pending_tokens * self.seconds_per_token
        share = max(tokens, quantum)
        return sum(min(t.tokens, share) for t in self._tickets) * self.seconds_per_token

    def admit(self, rows: int, tokens: int, quantum: int = 1) -> Ticket:
        """Admit a request of ``rows`` rows and about ``tokens`` tokens, or refuse it.

        Args:
            rows: the request's rows.
            tokens: its estimated tokens.
            quantum: tokens per sub-batch piece (how the replica interleaves requests).

        Raises:
            ApiError: 429 with ``retry_after``: how much later the request would fit (at least 1 s).
        """
        with self._lock:
            if self._tickets:
                reason = None
                pending_rows = self.pending_rows
                wait = self.expected_wait_s(tokens, quantum)
                if pending_rows + rows > self.max_pending_rows:
                    reason = f"{pending_rows} texts pending (limit {self.max_pending_rows})"
                elif wait > self.max_queue_wait_s:
                    reason = f"expected wait {wait:.1f}s, over the limit of {self.max_queue_wait_s:g}s"
                if reason is not None:
                    self.refused += 1
                    retry = max(1.0, math.ceil(wait - self.max_queue_wait_s))
                    raise ApiError(429, f"server busy: {reason}; retry later", retry_after=retry)
            ticket = Ticket(rows, tokens)
            self._tickets.add(ticket)
            return ticket

    def update(self, ticket: Ticket, *, rows: int | None = None, tokens: int | None = None) -> None:
        """Set what ``ticket`` still holds (e.g. real tokens after tokenizing, less after a part is done)."""
        with self._lock:
            if rows is not None:
                ticket.rows = rows
            if tokens is not None:
                ticket.tokens = tokens

    def release(self, ticket: Ticket) -> None:
        """The request ended (done, failed or cancelled): drop what it still holds."""
        with self._lock:
            self._tickets.discard(ticket)

    def record(self, tokens: int, seconds: float) -> None:
        """A batch of ``tokens`` real tokens took ``seconds``: update the cost per token.

        Batches under :data:`MIN_MEASURED_TOKENS` tokens are ignored (their cost is mostly overhead).
        """
        if tokens < MIN_MEASURED_TOKENS or seconds <= 0:
            return
        observed = seconds / tokens
        with self._lock:
            if self.measured:
                self.seconds_per_token += _EWMA_WEIGHT * (observed - self.seconds_per_token)
            else:
                self.seconds_per_token, self.measured = observed, True

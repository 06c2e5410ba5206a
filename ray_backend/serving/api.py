"""HTTP request and response shapes of the embedding server, and their pure handling.

Two request bodies are accepted:

- ``POST /v1/embeddings``: the OpenAI shape (``input``, ``model``, ``encoding_format``,
  ``dimensions``, ``user``) plus an optional ``instruction`` applied to every input.
- ``POST /embed``: ``{"texts": [...], "instruction": "..."}`` or ``{"pairs": [[instruction, text], ...]}``.

:func:`parse_body` turns raw bytes into a validated model or an :class:`ApiError` with the HTTP
status the server answers (413 too large, 422 malformed or wrong types, 400 empty input); nothing
here knows about FastAPI or Ray.

Hostile bodies are refused here, each with a JSON 4xx and never a 500. ``orjson`` parses the body
and itself refuses invalid UTF-8, nesting deeper than 1,024 levels (the request shapes are 3 deep),
numbers that overflow a double (a 5,000-digit integer), ``NaN`` / ``Infinity``, and lone UTF-16
surrogates (``"\ud800"``), which are valid JSON escapes but not text any tokenizer can read; two of
its refusals are reworded (nesting, and a number literal longer than :data:`MAX_NUMBER_CHARS`).
Integers beyond 64 bits parse as floats, which the request shapes refuse as not integers.
Deployment-handle requests skip JSON, so :func:`check_text` refuses lone surrogates there.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError, model_validator

__all__ = [
    "ApiError",
    "EmbedRequest",
    "OpenAIEmbeddingRequest",
    "ServerLimits",
    "check_dimensions",
    "check_input",
    "check_rows",
    "check_text",
    "check_unicode",
    "embed_response",
    "encode_vectors",
    "openai_response",
    "parse_body",
    "rows_of",
]

EncodingFormat = Literal["float", "base64"]
M = TypeVar("M", bound=BaseModel)
MAX_NUMBER_CHARS = 32
"""A refused number literal longer than this is named by its length (the only number in the request
shapes is ``dimensions``, an int of a few digits; a longer literal is a float or overflows, so 422)."""


class ApiError(Exception):
    """An error answered to the client as ``{"error": {"message", "type", "code"}}`` with ``status``."""

    _TYPES = {
        400: "invalid_request_error",
        401: "authentication_error",
        404: "not_found_error",
        408: "invalid_request_error",
        413: "request_too_large",
        422: "invalid_request_error",
        429: "rate_limit_error",
        503: "service_unavailable",
    }

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        """An error with HTTP ``status`` and a human-readable ``message``."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        """The JSON body (OpenAI's error shape)."""
        kind = self._TYPES.get(self.status, "server_error")
        return {"error": {"message": self.message, "type": kind, "code": self.status}}


@dataclass(frozen=True)
class ServerLimits:
    """Request limits; anything over them is answered 413 (size), 408 (slow body) or 429 (load).

    Attributes:
        max_inputs: texts per request.
        max_body_bytes: request body size.
        max_pending_rows: texts queued or running on one replica before new requests get 429.
        max_queue_wait_s: admission bound: a request is refused with 429 when the work already
            admitted on the replica plus its own is expected to take longer than this (from the
            replica's measured seconds per token). Keep it below the clients' timeout.
        body_timeout_s: seconds to receive the whole body (a body shorter than its
            ``Content-Length`` gets 408 after this, instead of holding the connection).
    """

    max_inputs: int = 2048
    max_body_bytes: int = 8 * 1024 * 1024
    max_pending_rows: int = 16384
    max_queue_wait_s: float = 30.0
    body_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("max_inputs", "max_body_bytes", "max_pending_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("max_queue_wait_s", "body_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
                raise ValueError(f"{name} must be a number of seconds in (0, 3600], got {value!r}")


class OpenAIEmbeddingRequest(BaseModel):
    """``POST /v1/embeddings`` body: OpenAI's embeddings request plus ``instruction``."""

    model_config = ConfigDict(extra="forbid")

    input: StrictStr | list[StrictStr]
    """One text or a list of texts (token-id arrays are not supported)."""
    model: StrictStr | None = None
    """Accepted and ignored: the server serves one model, and every response names it (so OpenAI
    clients that always send a model name, e.g. ``text-embedding-3-small``, work unchanged)."""
    encoding_format: EncodingFormat = "float"
    """``float`` lists, or ``base64`` of little-endian float32 bytes."""
    dimensions: StrictInt | None = None
    """Keep the first ``dimensions`` components, re-normalised (1 to the model's dim; else 400)."""
    user: StrictStr | None = None
    """Accepted for compatibility; unused."""
    instruction: StrictStr | None = None
    """INSTRUCTOR instruction for every input, e.g. ``"Represent the document for retrieval: "``."""


class EmbedRequest(BaseModel):
    """``POST /embed`` body: ``texts`` with one ``instruction``, or ``[instruction, text]`` ``pairs``."""

    model_config = ConfigDict(extra="forbid")

    texts: list[StrictStr] | None = None
    """Texts sharing ``instruction``."""
    instruction: StrictStr | None = None
    """Instruction for every text of ``texts`` (not allowed with ``pairs``)."""
    pairs: list[tuple[StrictStr, StrictStr]] | None = None
    """``[instruction, text]`` rows; instructions may differ per row."""
    normalize: StrictBool = True
    """L2-normalise the vectors."""
    encoding_format: EncodingFormat = "float"
    """``float`` lists, or ``base64`` of little-endian float32 bytes."""

    @model_validator(mode="after")
    def _one_input_kind(self) -> EmbedRequest:
        if (self.texts is None) == (self.pairs is None):
            raise ValueError("give exactly one of 'texts' or 'pairs'")
        if self.pairs is not None and self.instruction is not None:
            raise ValueError("'instruction' goes with 'texts'; with 'pairs' each row carries its own")
        return self


def parse_body(raw: bytes, model: type[M], limits: ServerLimits) -> M:
    """Validate a raw JSON body against ``model``.

    Raises:
        ApiError: 413 over ``limits.max_body_bytes``; 422 not UTF-8 JSON, nested too deeply, a
            number literal over :data:`MAX_NUMBER_CHARS` characters, ``NaN``/``Infinity``, a lone
            surrogate, not an object, or failing validation (the message lists each bad field).
    """
    if len(raw) > limits.max_body_bytes:
        raise ApiError(413, f"request body of {len(raw)} bytes exceeds the limit of {limits.max_body_bytes}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(422, _json_problem(exc)) from None
    if not isinstance(data, dict):
        raise ApiError(422, f"body must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        raise ApiError(422, f"invalid request: {problems}") from None


_NUMBER = re.compile(r"-?[0-9][0-9.eE+-]*")


def _json_problem(exc: orjson.JSONDecodeError) -> str:
    """The 422 message for a body orjson refused, in the API's words where it has its own."""
    if exc.msg.startswith("depth limit exceeded"):
        return "body is nested too deeply (the request shapes are at most 3 levels deep)"
    number = _NUMBER.match(exc.doc, exc.pos)
    if number and len(number.group()) > MAX_NUMBER_CHARS:
        return f"number literal of {len(number.group())} characters exceeds the limit of {MAX_NUMBER_CHARS}"
    near = exc.doc[exc.pos : exc.pos + 20]
    return f"body is not valid JSON: {exc}" + (f", at {near!r}" if near else "")


def check_text(value: str, where: str) -> None:
    """Refuse a string a tokenizer cannot read: one holding a lone UTF-16 surrogate.

    Raises:
        ApiError: 422 naming ``where`` (e.g. ``texts[3]``) and the offending position.
    """
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(
            422, f"{where} holds a lone UTF-16 surrogate {value[exc.start]!r} at index {exc.start}; send valid Unicode"
        ) from None


def check_unicode(texts: Sequence[str], instructions: Sequence[str]) -> None:
    """:func:`check_text` on every text and each distinct instruction (HTTP and handle requests alike)."""
    for i, text in enumerate(texts):
        check_text(text, f"texts[{i}]")
    for instruction in dict.fromkeys(instructions):
        check_text(instruction, "instruction")


def rows_of(request: OpenAIEmbeddingRequest | EmbedRequest, limits: ServerLimits) -> tuple[list[str], list[str]]:
    """``(texts, instructions)`` of a request, one instruction per text.

    Raises:
        ApiError: 400 for no inputs; 413 for more than ``limits.max_inputs``; 422 for a text or an
            instruction that is not valid Unicode (see :func:`check_text`).
    """
    if isinstance(request, OpenAIEmbeddingRequest):
        texts = [request.input] if isinstance(request.input, str) else list(request.input)
        instructions = [request.instruction or ""] * len(texts)
    elif request.pairs is not None:
        instructions = [p[0] for p in request.pairs]
        texts = [p[1] for p in request.pairs]
    else:
        texts = list(request.texts or [])
        instructions = [request.instruction or ""] * len(texts)
    check_input(texts, instructions, limits)
    return texts, instructions


def check_input(texts: Sequence[str], instructions: Sequence[str], limits: ServerLimits) -> None:
    """Every check a request's rows get, for HTTP and deployment-handle requests alike.

    Raises:
        ApiError: as :func:`check_rows` and :func:`check_unicode`.
    """
    check_rows(len(texts), limits)
    check_unicode(texts, instructions)


def check_rows(rows: int, limits: ServerLimits) -> None:
    """The per-request row limits, for HTTP and deployment-handle requests alike.

    Raises:
        ApiError: 400 for no rows; 413 for more than ``limits.max_inputs``.
    """
    if not rows:
        raise ApiError(400, "input is empty: give at least one text")
    if rows > limits.max_inputs:
        raise ApiError(413, f"{rows} inputs exceed the limit of {limits.max_inputs} per request")


def encode_vectors(vectors: np.ndarray, encoding_format: EncodingFormat) -> list[Any]:
    """Rows as float lists, or as base64 strings of little-endian float32 bytes."""
    vectors = np.asarray(vectors, dtype="<f4")
    if encoding_format == "base64":
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in vectors]
    rows: list[Any] = vectors.tolist()
    return rows


def truncate_dimensions(vectors: np.ndarray, dimensions: int | None, dim: int) -> np.ndarray:
    """First ``dimensions`` components, L2-normalised again; ``None`` keeps all.

    Raises:
        ApiError: 400 when ``dimensions`` is not in ``1..dim``.
    """
    check_dimensions(dimensions, dim)
    if dimensions is None or dimensions == dim:
        return vectors
    cut = vectors[:, :dimensions]
    norms = np.linalg.norm(cut, axis=1, keepdims=True)
    return (cut / np.maximum(norms, 1e-12)).astype(np.float32)


def check_dimensions(dimensions: int | None, dim: int) -> None:
    """400 unless ``dimensions`` is ``None`` or in ``1..dim``."""
    if dimensions is not None and not 1 <= dimensions <= dim:
        raise ApiError(400, f"dimensions={dimensions} is out of range; valid: 1 to the model's dimension {dim}")


def openai_response(vectors: np.ndarray, request: OpenAIEmbeddingRequest, model: str, tokens: int) -> dict[str, Any]:
    """The OpenAI ``list`` of ``embedding`` objects with true token usage."""
    data = encode_vectors(vectors, request.encoding_format)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(data)],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def embed_response(vectors: np.ndarray, request: EmbedRequest, model: str, tokens: int) -> dict[str, Any]:
    """``/embed`` answer: ``embeddings`` in input order, ``dim``, ``model`` and ``usage``."""
    return {
        "embeddings": encode_vectors(vectors, request.encoding_format),
        "encoding_format": request.encoding_format,
        "dim": int(vectors.shape[1]),
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }

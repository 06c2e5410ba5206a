from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from ray_backend.serving.api import (
    ApiError,
    EmbedRequest,
    OpenAIEmbeddingRequest,
    ServerLimits,
    encode_vectors,
    parse_body,
    rows_of,
    truncate_dimensions,
)

LIMITS = ServerLimits(max_inputs=3, max_body_bytes=200)


def status_of(raw: bytes, model: type = EmbedRequest, limits: ServerLimits = LIMITS) -> int:
    with pytest.raises(ApiError) as info:
        rows_of(parse_body(raw, model, limits), limits)
    return info.value.status


@pytest.mark.parametrize(
    ("raw", "model", "status"),
    [
        (b"{not json", EmbedRequest, 422),
        (b"\xff\xfe", EmbedRequest, 422),
        (b"[1, 2]", EmbedRequest, 422),
        (b'{"texts": "a"}', EmbedRequest, 422),
        (b'{"texts": [1]}', EmbedRequest, 422),
        (b'{"texts": ["a"], "instruction": 3}', EmbedRequest, 422),
        (b'{"texts": ["a"], "pairs": [["i", "t"]]}', EmbedRequest, 422),
        (b'{"pairs": [["i", "t"]], "instruction": "x"}', EmbedRequest, 422),
        (b'{"pairs": [["only-one"]]}', EmbedRequest, 422),
        (b'{"texts": ["a"], "typo": 1}', EmbedRequest, 422),
        (b"{}", EmbedRequest, 422),
        (b'{"texts": []}', EmbedRequest, 400),
        (b'{"pairs": []}', EmbedRequest, 400),
        (b'{"texts": ["a", "b", "c", "d"]}', EmbedRequest, 413),
        (b'{"texts": ["' + b"x" * 300 + b'"]}', EmbedRequest, 413),
        (b'{"input": [[1, 2]]}', OpenAIEmbeddingRequest, 422),
        (b'{"input": "a", "encoding_format": "int8"}', OpenAIEmbeddingRequest, 422),
        (b'{"texts": ["a\\ud800"]}', EmbedRequest, 422),
        (b'{"texts": ["a"], "instruction": "\\udfff: "}', EmbedRequest, 422),
        (b'{"pairs": [["\\ud83d", "t"]]}', EmbedRequest, 422),
        (b'{"texts": ["a"], "x": ' + b"[" * 80 + b"]" * 80 + b"}", EmbedRequest, 422),
        (b'{"input": "a", "dimensions": 1' + b"0" * 40 + b"}", OpenAIEmbeddingRequest, 422),
        (b'{"input": "a", "dimensions": 1e999}', OpenAIEmbeddingRequest, 422),
        (b'{"input": "a", "dimensions": NaN}', OpenAIEmbeddingRequest, 422),
        (b'{"input": "a", "dimensions": -Infinity}', OpenAIEmbeddingRequest, 422),
        (b'{"input": "a", "dimensions": 1.5}', OpenAIEmbeddingRequest, 422),
        (b'{"input": "a", "dimensions": true}', OpenAIEmbeddingRequest, 422),
        (b'{"input": []}', OpenAIEmbeddingRequest, 400),
        (b'{"input": ["a", "b", "c", "d"]}', OpenAIEmbeddingRequest, 413),
    ],
)
def test_bad_bodies_get_the_right_status(raw: bytes, model: type, status: int) -> None:
    assert status_of(raw, model) == status


def test_validation_message_names_the_field() -> None:
    with pytest.raises(ApiError, match="texts.0") as info:
        parse_body(b'{"texts": [1]}', EmbedRequest, LIMITS)
    body = info.value.body()
    assert body["error"]["code"] == 422 and body["error"]["type"] == "invalid_request_error"


def test_rows_of_each_request_shape() -> None:
    openai = OpenAIEmbeddingRequest(input="hi", instruction="Represent: ")
    assert rows_of(openai, LIMITS) == (["hi"], ["Represent: "])
    texts = EmbedRequest(texts=["a", "b"])
    assert rows_of(texts, LIMITS) == (["a", "b"], ["", ""])
    pairs = parse_body(json.dumps({"pairs": [["q: ", "a"], ["d: ", "b"]]}).encode(), EmbedRequest, LIMITS)
    assert rows_of(pairs, LIMITS) == (["a", "b"], ["q: ", "d: "])


def test_base64_is_little_endian_float32_and_round_trips() -> None:
    vectors = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    encoded = encode_vectors(vectors, "base64")
    back = np.stack([np.frombuffer(base64.b64decode(s), dtype="<f4") for s in encoded])
    np.testing.assert_array_equal(back, vectors)
    assert encode_vectors(vectors, "float")[1] == vectors[1].tolist()


def test_truncate_dimensions_renormalises_and_rejects_too_many() -> None:
    vectors = np.random.default_rng(1).standard_normal((3, 6)).astype(np.float32)
    cut = truncate_dimensions(vectors, 4, 6)
    np.testing.assert_allclose(np.linalg.norm(cut, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(cut / cut[:, :1], vectors[:, :4] / vectors[:, :1], rtol=1e-5)
    assert truncate_dimensions(vectors, None, 6) is vectors
    for bad in (7, 0, -3):
        with pytest.raises(ApiError, match="out of range; valid: 1 to") as info:
            truncate_dimensions(vectors, bad, 6)
        assert info.value.status == 400


def test_surrogate_message_names_the_row_and_position() -> None:
    with pytest.raises(ApiError, match=r"texts\[1\] holds a lone UTF-16 surrogate '\\ud800' at index 2"):
        rows_of(EmbedRequest(texts=["ok", "ab\ud800"]), LIMITS)
    assert rows_of(EmbedRequest(texts=["é😀"]), LIMITS) == (["é😀"], [""])  # real non-ASCII passes


def test_deep_nesting_is_a_422_not_a_recursion_error() -> None:
    limits = ServerLimits(max_body_bytes=100_000)
    for raw in (b"[" * 50_000 + b"]" * 50_000, b'{"texts": ' + b'{"a": ' * 12_000 + b"1" + b"}" * 12_001):
        with pytest.raises(ApiError, match="nested too deeply") as info:
            parse_body(raw, EmbedRequest, limits)
        assert info.value.status == 422


def test_a_5000_digit_integer_is_refused_before_conversion() -> None:
    limits = ServerLimits(max_body_bytes=10_000)
    with pytest.raises(ApiError, match="number literal of 5000 characters exceeds the limit of 32"):
        parse_body(b'{"input": "a", "dimensions": ' + b"9" * 5000 + b"}", OpenAIEmbeddingRequest, limits)


@pytest.mark.parametrize("field", ["max_inputs", "max_body_bytes", "max_pending_rows", "max_queue_wait_s"])
def test_limits_validate(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ServerLimits(**{field: 0})

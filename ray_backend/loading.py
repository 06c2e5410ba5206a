"""Loading the encoder: one home for the Serve replicas and the batch actors.

Used by :mod:`ray_backend.serving.service` and :mod:`ray_backend.batch.embedder`: the bundled or named model
through ``InstructorEncoder.load``, or a factory named by an import path.
"""

from __future__ import annotations

import importlib
from typing import Any

from instructor_plugins.types import Encoder

__all__ = ["import_object", "load_encoder"]


def import_object(path: str) -> Any:
    """The object named by ``"package.module:attribute"`` (Ray's import-path idiom).

    Raises:
        ValueError: ``path`` is not ``module:attribute`` or names nothing importable.
    """
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"encoder factory must be an import path 'module:callable', got {path!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import encoder factory {path!r}: {exc}") from None
    return obj


def load_encoder(
    model: str | None,
    *,
    device: str | None = None,
    dtype: str | None = None,
    factory: str | None = None,
    quantize: str | None = None,
    backend: str | None = None,
) -> Encoder:
    """Load ``model`` (``None`` = the bundled model) with ``InstructorEncoder.load``, or with ``factory``.

    Args:
        model: model name or path.
        device: encoder device.
        dtype: encoder dtype.
        factory: import path ``"module:callable"`` of ``callable(model, *, device, dtype) -> Encoder``
            (e.g. ``"instructor_plugins.testing:hash_encoder"`` for plumbing tests); it gets
            ``quantize=`` and ``backend=`` too when they are set.
        quantize: ``"int8"`` for the int8 CPU path (see :mod:`instructor_plugins.quantization`).
        backend: ``"torch"`` (``None``), ``"onnx"`` or ``"openvino"`` (see :mod:`instructor_plugins.runtimes`).
    """
    if factory is not None:
        extra = {k: v for k, v in (("quantize", quantize), ("backend", backend)) if v is not None}
        encoder: Encoder = import_object(factory)(model, device=device, dtype=dtype, **extra)
        return encoder
    from instructor_plugins.model import InstructorEncoder

    return InstructorEncoder.load(model, device=device, dtype=dtype, quantize=quantize, backend=backend)

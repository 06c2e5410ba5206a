"""Command-line flags generated from config classes: the one place a CLI flag is defined.

Every ``instructor`` subcommand (and its ``python -m`` twin) builds its parser from the config it
fills, so a default or a help text is written once, next to the field::

    @dataclass
    class BatchConfig:
        batch_size: int = 32
        \"\"\"Texts per forward pass.\"\"\"

    parser = command_parser("instructor batch", __doc__)
    add_config_flags(parser, BatchConfig)                  # --batch-size N  Texts per forward pass. (default: 32)
    config = config_from_args(parser, BatchConfig, parser.parse_args(argv))

Rules, from the field's type and default: ``bool`` defaulting to ``True`` gives ``--x/--no-x``,
defaulting to ``False`` gives ``--x``; ``int``/``float``/``str``/``Path`` take one value;
``Literal[...]`` restricts to its values; ``list``/``tuple`` take one or more values (commas split
too); ``dict`` takes JSON; a field without a default is a required flag (or a positional). Help
is the attribute docstring under the field, and ``--help`` shows every default. Config classes
are dataclasses or pydantic models. A config that rejects the values (``ValueError``,
``TypeError``, pydantic's ``ValidationError``) is a usage error: exit status 2 with the message.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import re
import textwrap
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

__all__ = ["ConfigField", "add_config_flags", "command_parser", "config_fields", "config_from_args"]

C = TypeVar("C")
_MISSING: Any = dataclasses.MISSING


@dataclasses.dataclass(frozen=True)
class ConfigField:
    """One field of a config class, as the flag helper sees it."""

    name: str
    annotation: Any
    default: Any = _MISSING
    help: str = ""

    @property
    def required(self) -> bool:
        """No default: the flag must be given."""
        return self.default is _MISSING


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks."""


def _shown(value: Any) -> str:
    """A default as the user would type it."""
    if value is None or value == () or value == []:
        return "none"
    if isinstance(value, str):
        return repr(value) if value == "" or value != value.strip() else value
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _help_text(field: ConfigField) -> str:
    text = field.help.replace("``", "").replace("%", "%%").strip()
    suffix = "required" if field.required else f"default: {_shown(field.default).replace('%', '%%')}"
    return f"{text} ({suffix})" if text else f"({suffix})"


def command_parser(prog: str, description: str | None = None) -> argparse.ArgumentParser:
    r"""An ``ArgumentParser`` that shows defaults and keeps the description's layout.

    The description is usually the command module's docstring, written for the command's users: what it does and
    an example. A docstring that goes on to explain the module to its developers puts that part under a line
    ``How it works:``; ``--help`` shows the text above that line only.

    Args:
        prog: the command as typed, e.g. ``"instructor batch"`` or ``"python -m ray_backend.batch"``.
        description: usually the module docstring.

    >>> command_parser("x", "Do things.\n\nHow it works:\n  internals").description
    'Do things.'
    """
    if description:
        description = re.split(r"^\s*How it works:\s*$", description, maxsplit=1, flags=re.M)[0].rstrip()
    text = _plain_text(description) if description else description
    return argparse.ArgumentParser(prog=prog, description=text, formatter_class=_HelpFormatter)


def _plain_text(doc: str) -> str:
    """A reStructuredText docstring as terminal text: no roles, no double backticks, ``::`` as ``:``.

    >>> _plain_text("Run :mod:`ray_backend.serve` with ``--port``, like this::")
    'Run ray_backend.serve with --port, like this:'
    """
    doc = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", doc)
    doc = doc.replace("``", "")
    return re.sub(r"(\S)::$", r"\1:", re.sub(r"^\s*::$\n?", "", doc, flags=re.M), flags=re.M)


@cache
def _attribute_docs(cls: type) -> dict[str, str]:
    """Docstrings written under annotated class attributes (PEP 257), for ``cls`` and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or klass.__module__ == "builtins":
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        tree = ast.parse(source)
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(inspect.cleandoc(after.value.value).split())
    return docs


def config_fields(cls: type) -> list[ConfigField]:
    """The fields of a dataclass or pydantic model, with resolved types, defaults and docstrings."""
    docs = _attribute_docs(cls)
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            default: Any = f.default
            factory: Any = f.default_factory
            if default is _MISSING and factory is not _MISSING:
                default = factory()
            out.append(ConfigField(f.name, hints[f.name], default, docs.get(f.name, "")))
        return out
    model_fields = getattr(cls, "model_fields", None)
    if model_fields is None:
        raise TypeError(f"{cls.__name__} is neither a dataclass nor a pydantic model")
    out = []
    for name, info in model_fields.items():
        default = _MISSING if info.is_required() else info.get_default(call_default_factory=True)
        out.append(ConfigField(name, info.annotation, default, docs.get(name) or info.description or ""))
    return out


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _scalar(tp: Any) -> Callable[[str], Any]:
    if tp in (int, float, str):
        return typing.cast(Callable[[str], Any], tp)
    if isinstance(tp, type) and issubclass(tp, Path):
        return Path
    return str


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {text!r} ({exc})") from None


def _argument(field: ConfigField, flags: list[str]) -> tuple[list[str], dict[str, Any]]:
    """``add_argument`` positional and keyword arguments for one field."""
    tp = _strip_optional(field.annotation)
    origin = typing.get_origin(tp)
    kwargs: dict[str, Any] = {"help": _help_text(field), "dest": field.name}
    if field.required:
        kwargs["required"] = True
    else:
        kwargs["default"] = field.default
    if tp is bool:
        if field.required or field.default is True:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["action"] = "store_true"
        return flags, kwargs
    if origin is Literal:
        kwargs["choices"] = list(typing.get_args(tp))
        kwargs["type"] = type(kwargs["choices"][0])
    elif origin in (list, tuple) or tp in (list, tuple):
        item = next((a for a in typing.get_args(tp) if a is not Ellipsis), str)
        kwargs["nargs"] = "+"
        kwargs["type"] = _scalar(_strip_optional(item))
        kwargs["metavar"] = field.name.upper().rstrip("S") or "VALUE"
    elif origin is dict or tp is dict:
        kwargs["type"] = _json_value
        kwargs["metavar"] = "JSON"
    else:
        kwargs["type"] = _scalar(tp)
    return flags, kwargs


def add_config_flags(
    parser: argparse.ArgumentParser | Any,
    cls: type,
    *,
    exclude: Iterable[str] = (),
    positional: Iterable[str] = (),
    aliases: Mapping[str, Iterable[str]] | None = None,
    help: Mapping[str, str] | None = None,  # noqa: A002 - mirrors argparse's own keyword
) -> list[str]:
    """Add one flag per field of ``cls`` to ``parser`` (or an argument group); return the field names added.

    Args:
        parser: an ``ArgumentParser`` or an argument group of one.
        cls: a dataclass or pydantic model.
        exclude: fields that get no flag (the caller fills them itself).
        positional: fields taken as positional arguments instead of ``--flags``.
        aliases: extra option strings per field, e.g. ``{"num_replicas": ["--replicas"]}``.
        help: help text per field where the docstring is not the right words for a CLI.
    """
    skip, positional, aliases, help = set(exclude), set(positional), dict(aliases or {}), dict(help or {})
    added = []
    for field in config_fields(cls):
        if field.name in skip:
            continue
        if field.name in help:
            field = dataclasses.replace(field, help=help[field.name])
        if field.name in positional:
            _, kwargs = _argument(field, [])
            kwargs.pop("dest")
            kwargs.pop("required", None)
            kwargs.pop("metavar", None)
            if not field.required:
                kwargs["nargs"] = "?" if kwargs.get("nargs") is None else "*"
            parser.add_argument(field.name, **kwargs)
        else:
            flags = [f"--{field.name.replace('_', '-')}", *aliases.get(field.name, ())]
            args, kwargs = _argument(field, flags)
            parser.add_argument(*args, **kwargs)
        added.append(field.name)
    return added


def _flatten(value: Any) -> Any:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` for list flags."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [part.strip() for v in value for part in v.split(",") if part.strip()]
    return value


def config_from_args(parser: argparse.ArgumentParser, cls: type[C], args: argparse.Namespace, **values: Any) -> C:
    """Build ``cls`` from the parsed ``args`` (its own fields only) plus ``values``.

    A config that rejects the values ends the program like any other usage error: the message on
    stderr and exit status 2 (``parser.error``).
    """
    names = {f.name: f for f in config_fields(cls)}
    given = {k: v for k, v in vars(args).items() if k in names}
    for name, value in given.items():
        origin = typing.get_origin(_strip_optional(names[name].annotation))
        value = _flatten(value)
        given[name] = tuple(value) if origin is tuple and isinstance(value, list) else value
    given.update(values)
    try:
        return cls(**given)
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        parser.error(_one_line(exc))
        raise  # unreachable: parser.error exits


def _one_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: "field: message" per error
        try:
            return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors())
        except Exception:  # noqa: BLE001 - fall back to the plain message
            pass
    return str(exc)

"""Resolving a schema reference (dotted path or file path) to a pydantic model."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, PydanticUndefinedAnnotation, PydanticUserError

from structx._errors import SchemaError

__all__ = ["DEFAULT_SCHEMA_REF", "load_schema", "schema_fingerprint", "without_async_validators"]

DEFAULT_SCHEMA_REF = "structx_schemas.iran_militias:ArticleExtraction"


def load_schema(ref: str | type[BaseModel]) -> type[BaseModel]:
    """Load ``package.module:Class`` or ``path/to/file.py:Class``.

    A model class passes through unchanged. A model with instructor async
    validators is refused: structx would never run them.
    """
    if isinstance(ref, type):
        if issubclass(ref, BaseModel):
            return without_async_validators(_complete(ref))
        raise SchemaError(f"{ref.__qualname__} is not a pydantic model")
    module_ref, sep, attr = ref.rpartition(":")
    if not sep or not module_ref or not attr:
        raise SchemaError(f"schema {ref!r} must name a class: 'package.module:Class' or 'path/to/file.py:Class'")
    if module_ref.endswith(".py") or "/" in module_ref or "\\" in module_ref:
        module = _import_file(Path(module_ref))
    else:
        try:
            module = importlib.import_module(module_ref)
        except ImportError as exc:
            raise SchemaError(f"cannot import schema module {module_ref!r}: {exc}") from None
    target = getattr(module, attr, None)
    if not (isinstance(target, type) and issubclass(target, BaseModel)):
        raise SchemaError(f"{module_ref} has no pydantic model named {attr!r}")
    return without_async_validators(_complete(target))


@lru_cache(maxsize=64)
def _complete(schema: type[BaseModel]) -> type[BaseModel]:
    """``schema``, or a SchemaError if pydantic cannot build it (an annotation naming nothing, say).

    pydantic defers a class whose annotations it cannot resolve yet and fails
    only when it is first used: that would fail every article, not the run.
    """
    try:
        if not schema.__pydantic_complete__:
            schema.model_rebuild(raise_errors=True)
        schema.model_json_schema()
    except (PydanticUndefinedAnnotation, PydanticUserError) as exc:
        reason = str(exc).splitlines()[0]
        raise SchemaError(f"schema {schema.__qualname__} cannot be built: {reason}") from None
    return schema


@lru_cache(maxsize=64)
def without_async_validators(schema: type[BaseModel]) -> type[BaseModel]:
    """``schema``, or a SchemaError if it has instructor async validators.

    instructor's runtime never runs them; saying so beats dropping them silently.
    """
    # Imported here: instructor (and openai with it) takes most of a second to
    # import, and only commands that extract need it.
    from instructor.v2.validation.async_validators import reject_async_validators

    try:
        reject_async_validators(schema)
    except ValueError as exc:
        raise SchemaError(f"schema {schema.__qualname__}: {exc}") from None
    return schema


def _import_file(path: Path) -> object:
    if not path.is_file():
        raise SchemaError(f"schema file {path} does not exist")
    module_name = "structx_user_schema_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise SchemaError(f"cannot load schema file {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before execution so that pydantic can resolve the module's
    # postponed annotations while the classes are being built.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise SchemaError(f"schema file {path} failed to import: {type(exc).__name__}: {exc}") from exc
    return module


@lru_cache(maxsize=64)
def schema_fingerprint(schema: type[BaseModel]) -> str:
    """A short hash of the schema's JSON schema: it changes when the target changes."""
    text = json.dumps(schema.model_json_schema(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]

"""Record models validated and dumped by pydantic-core, without pydantic's Python layer.

Importing pydantic and building a model's schema from its annotations cost about 105 ms
of every process that reads a run (``status``, ``pause``, the console), more than the
whole read of a 1k-run file. The records need a small part of that machinery: a handful
of field types, defaults, unknown fields kept, and a dump of what was read. This module
turns a class's annotations into a pydantic-core schema for exactly those types, the same
schema pydantic generated for them, so verdicts, error locations and messages are
pydantic's (``ValidationError`` is pydantic-core's class; pydantic re-exports it).

A model declares its fields as annotations with class-level defaults, as with pydantic::

    class LifecycleRecord(RecordModel):
        event: str
        recorded_at_ms: U64
        reason: str | None = None
        metadata: Any = None
        tags: list[str] = Factory(list)

Supported annotations: ``str``, ``bool``, ``int``, ``float``, ``Any``, a ``StrEnum``, a
``RecordModel``, ``X | None``, ``list[X]``, ``dict[str, X]``, and ``Annotated[X, ...]``
with :class:`Constraints` (``strict``, ``ge``, ``le``) or :class:`Check` (a function run
after ``X`` validates, returning the value or raising ``ValueError``). Anything else is
a ``TypeError`` when the class is defined, never a silently different schema.

Instances keep pydantic's layout (``__dict__`` for fields, ``__pydantic_extra__`` for
unknown ones, ``__pydantic_fields_set__`` for what was given or assigned, which counts
unknown fields too), because pydantic-core builds them so. The API is the subset of
``BaseModel`` the package uses: construction by keywords (validated, with the models'
defaults), :meth:`RecordModel.model_validate`, :meth:`RecordModel.model_dump`,
:meth:`RecordModel.model_copy`, ``model_fields``, ``model_fields_set``,
``model_extra``, and equality of type, fields and unknown fields.
"""

from __future__ import annotations

import copy
import types
import typing
from enum import StrEnum
from typing import Any, Callable, ClassVar

from tandem_tui.domain.core_validation import SchemaSerializer, SchemaValidator

if typing.TYPE_CHECKING:
    from pydantic_core import core_schema

_MISSING: Any = object()


class Factory:
    """A field's default made anew for each instance (pydantic's ``default_factory``)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


class Constraints:
    """``Annotated`` metadata for a number: pydantic's ``Field(strict=, ge=, le=)``."""

    __slots__ = ("options",)

    def __init__(self, *, strict: bool | None = None, ge: int | None = None, le: int | None = None) -> None:
        self.options = {name: value for name, value in (("strict", strict), ("ge", ge), ("le", le)) if value is not None}


class Check:
    """``Annotated`` metadata: ``check(value)`` after the type validates (pydantic's
    ``AfterValidator``); it returns the value or raises ``ValueError``."""

    __slots__ = ("check",)

    def __init__(self, check: Callable[[Any], Any]) -> None:
        self.check = check


class FieldSpec:
    """One declared field: its default, or that it is required."""

    __slots__ = ("name", "default", "factory")

    def __init__(self, name: str, default: Any, factory: Callable[[], Any] | None) -> None:
        self.name = name
        self.default = default
        self.factory = factory

    def is_required(self) -> bool:
        return self.default is _MISSING and self.factory is None

    def get_default(self, *, call_default_factory: bool = False) -> Any:
        if self.factory is not None:
            return self.factory() if call_default_factory else None
        return None if self.default is _MISSING else self.default


def _object_setattr(target: object, name: str, value: Any) -> None:
    object.__setattr__(target, name, value)


class RecordModel:
    """Base of the record models: see the module docstring.

    A subclass may set ``required_by_serde`` (field names that must be present when
    validated with the ``{"serde": True}`` context, though the model defaults them for
    in-memory use) and ``lossless`` (dump a field that was neither read nor assigned only
    when it differs from its default; otherwise every field is dumped).
    """

    __slots__ = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")

    # Set on each subclass when it is defined.
    model_fields: ClassVar[dict[str, FieldSpec]] = {}
    required_by_serde: ClassVar[tuple[str, ...]] = ()
    lossless: ClassVar[bool] = False
    __core_schema__: ClassVar[dict[str, Any]]
    __pydantic_validator__: ClassVar[SchemaValidator]
    __pydantic_serializer__: ClassVar[SchemaSerializer]
    _json_defaults: ClassVar[dict[str, Any] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _build(cls)

    def __init__(self, /, **data: Any) -> None:
        type(self).__pydantic_validator__.validate_python(data, self_instance=self)

    # -- pydantic's API, the part the package uses -----------------------------------

    @classmethod
    def model_validate(cls, obj: Any, *, context: dict[str, Any] | None = None) -> Any:
        return cls.__pydantic_validator__.validate_python(obj, context=context)

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]:
        return type(self).__pydantic_serializer__.to_python(self, mode=mode)

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any:
        copied = self.__deepcopy__() if deep else self.__copy__()
        if update:
            fields = type(self).model_fields
            for name, value in update.items():
                if name in fields:
                    copied.__dict__[name] = value
                else:
                    if copied.__pydantic_extra__ is None:
                        _object_setattr(copied, "__pydantic_extra__", {})
                    copied.__pydantic_extra__[name] = value
            copied.__pydantic_fields_set__.update(update)
        return copied

    @property
    def model_fields_set(self) -> set[str]:
        return self.__pydantic_fields_set__

    @property
    def model_extra(self) -> dict[str, Any] | None:
        return self.__pydantic_extra__

    # -- the object protocol ------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).model_fields:
            self.__dict__[name] = value
            self.__pydantic_fields_set__.add(name)
        elif isinstance(getattr(type(self), name, None), property) or name.startswith("__"):
            object.__setattr__(self, name, value)
        else:
            # An unknown field, kept as one read from the input would be.
            if self.__pydantic_extra__ is None:
                _object_setattr(self, "__pydantic_extra__", {})
            self.__pydantic_extra__[name] = value
            self.__pydantic_fields_set__.add(name)

    def __getattr__(self, name: str) -> Any:
        # Only reached when the usual lookup failed: unknown fields read as attributes.
        try:
            extra = object.__getattribute__(self, "__pydantic_extra__")
        except AttributeError:
            extra = None
        if extra is not None and name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __copy__(self) -> Any:
        cls = type(self)
        copied = cls.__new__(cls)
        _object_setattr(copied, "__dict__", dict(self.__dict__))
        extra = self.__pydantic_extra__
        _object_setattr(copied, "__pydantic_extra__", None if extra is None else dict(extra))
        _object_setattr(copied, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        _object_setattr(copied, "__pydantic_private__", None)
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        cls = type(self)
        copied = cls.__new__(cls)
        if memo is None:
            memo = {}
        memo[id(self)] = copied
        _object_setattr(copied, "__dict__", {name: _deep(value, memo) for name, value in self.__dict__.items()})
        _object_setattr(copied, "__pydantic_extra__", copy.deepcopy(self.__pydantic_extra__, memo))
        _object_setattr(copied, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        _object_setattr(copied, "__pydantic_private__", None)
        return copied

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordModel):
            return NotImplemented
        return (
            type(self) is type(other)
            and self.__dict__ == other.__dict__
            and self.__pydantic_extra__ == other.__pydantic_extra__
        )

    __hash__ = None  # type: ignore[assignment]  # mutable records, as pydantic's

    def __iter__(self) -> typing.Iterator[tuple[str, Any]]:
        yield from self.__dict__.items()
        if self.__pydantic_extra__:
            yield from self.__pydantic_extra__.items()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{name}={value!r}' for name, value in self)})"


#: Values a deep copy shares (immutable): the fields of most records are these.
_ATOMIC = frozenset({str, int, float, bool, type(None)})


def _deep(value: Any, memo: dict[int, Any]) -> Any:
    """``copy.deepcopy(value, memo)``, without its machinery for the values most fields
    hold (immutable scalars and enums): a view tracks a copy of each queued run's
    metadata, ~500 of them on every first screen of a 10k-run host."""
    if type(value) in _ATOMIC or isinstance(value, StrEnum):
        return value
    return copy.deepcopy(value, memo)


# --- from annotations to a pydantic-core schema ----------------------------------------


def _build(cls: type[RecordModel]) -> None:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields: dict[str, FieldSpec] = {}
    schemas: dict[str, dict[str, Any]] = {}
    for name, annotation in hints.items():
        if typing.get_origin(annotation) is ClassVar or name.startswith("_"):
            continue
        value = cls.__dict__.get(name, _MISSING)
        if value is not _MISSING:
            delattr(cls, name)  # instances hold every field; no class attribute shadows one
        factory = value.make if isinstance(value, Factory) else None
        spec = FieldSpec(name, _MISSING if factory is not None else value, factory)
        schema = _schema_of(annotation)
        if factory is not None:
            schema = {"type": "default", "schema": schema, "default_factory": factory}
        elif value is not _MISSING:
            schema = {"type": "default", "schema": schema, "default": value}
        fields[name] = spec
        schemas[name] = {"type": "model-field", "schema": schema}
    cls.model_fields = fields
    cls._json_defaults = None
    name = cls.__name__
    # The dicts pydantic-core's ``core_schema`` builders make (a test holds them equal).
    schema: dict[str, Any] = {
        "type": "model",
        "cls": cls,
        "schema": {"type": "model-fields", "fields": schemas, "model_name": name, "computed_fields": []},
        "custom_init": False,
        "root_model": False,
        "config": {
            "title": name,
            "extra_fields_behavior": "allow",
            "validate_by_alias": True,
            "validate_by_name": True,
        },
    }
    if cls.lossless:
        schema["serialization"] = {
            "type": "function-wrap",
            "function": _dump_lossless,
            "info_arg": False,
            "return_schema": {"type": "dict", "keys_schema": {"type": "str"}, "values_schema": {"type": "any"}},
        }
    if cls.required_by_serde:
        schema = _after(_serde_required(cls.required_by_serde), schema, info=True)
    cls.__core_schema__ = schema
    # The config names the outer schema too (an error says "for Run", as pydantic's did).
    config = {"title": name}
    cls.__pydantic_validator__ = SchemaValidator(schema, config)
    cls.__pydantic_serializer__ = SchemaSerializer(schema, config)


def _schema_of(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *metadata = typing.get_args(annotation)
        schema = _schema_of(inner)
        for item in metadata:
            if isinstance(item, Constraints):
                schema = {**schema, **item.options}  # type: ignore[typeddict-item]
            elif isinstance(item, Check):
                schema = _after(item.check, schema, info=False)
            else:
                raise TypeError(f"unsupported field metadata {item!r}")
        return schema
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) != 1 or len(typing.get_args(annotation)) != 2:
            raise TypeError(f"unsupported union {annotation!r}: only X | None")
        return {"type": "nullable", "schema": _schema_of(members[0])}
    if origin is list:
        (item,) = typing.get_args(annotation)
        return {"type": "list", "items_schema": _schema_of(item)}
    if origin is dict:
        key, value = typing.get_args(annotation)
        if key is not str:
            raise TypeError(f"unsupported mapping {annotation!r}: keys must be str")
        return {"type": "dict", "keys_schema": {"type": "str"}, "values_schema": _schema_of(value)}
    if annotation is Any:
        return {"type": "any"}
    if annotation is str:
        return {"type": "str"}
    if annotation is bool:
        return {"type": "bool"}
    if annotation is int:
        return {"type": "int"}
    if annotation is float:
        return {"type": "float"}
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return {"type": "enum", "cls": annotation, "members": list(annotation.__members__.values()), "sub_type": "str"}
    if isinstance(annotation, type) and issubclass(annotation, RecordModel):
        return annotation.__core_schema__
    raise TypeError(f"unsupported field type {annotation!r}")


def _after(function: Callable[..., Any], schema: dict[str, Any], *, info: bool) -> dict[str, Any]:
    """``function`` run after ``schema`` validates (pydantic-core's ``function-after``),
    given the validation info as its second argument when ``info``."""
    return {"type": "function-after", "function": {"type": "with-info" if info else "no-info", "function": function}, "schema": schema}


def _serde_required(names: tuple[str, ...]) -> Callable[[Any, core_schema.ValidationInfo], Any]:
    def check(model: Any, info: core_schema.ValidationInfo) -> Any:
        # After the field checks (the schema wraps the model's): serde names a missing
        # field only once every present one has deserialized.
        if info.context and info.context.get("serde"):
            for name in names:
                if name not in model.__pydantic_fields_set__:
                    raise ValueError(f"missing field `{name}`")
        return model

    check.serde_required = names  # type: ignore[attr-defined]  # what _verdict_schema reads
    return check


def verdict_validator(cls: type[RecordModel]) -> SchemaValidator:
    """A validator that accepts exactly what ``cls.model_validate`` accepts, with the same
    context, and builds no model: its output is not the model's, and its errors need not
    be worded alike. For a verdict alone: the parse helper judges every entry of a
    console's first read (``source.file.first_read``), and a third of the validation's
    time was building the models it dropped. Built once per class."""
    found = cls.__dict__.get("_verdict_validator")
    if found is None:
        found = SchemaValidator(_verdict_schema(cls.__core_schema__), {"title": cls.__name__})
        cls._verdict_validator = found
    return found


#: The keys of a schema that hold another schema (of the types the models use).
_SUB_SCHEMAS = ("schema", "items_schema", "keys_schema", "values_schema")


def _verdict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each model validated as its fields alone (pydantic-core's
    ``model-fields``: a ``(fields, unknown fields, fields set)`` tuple, unknown fields
    ignored rather than kept, which accepts the same inputs) and serde's required fields
    checked on that tuple."""
    kind = schema["type"]
    if kind == "model":
        return _verdict_schema(schema["schema"])
    function = schema.get("function")
    names = getattr(function.get("function"), "serde_required", None) if isinstance(function, dict) else None
    if kind == "function-after" and names is not None:
        return _after(_serde_required_of_fields(names), _verdict_schema(schema["schema"]), info=True)
    judged = {key: value for key, value in schema.items() if key != "serialization"}
    for key in _SUB_SCHEMAS:
        if key in judged:
            judged[key] = _verdict_schema(judged[key])
    if kind == "model-fields":
        judged["fields"] = {name: _verdict_schema(field) for name, field in judged["fields"].items()}
    return judged


def _serde_required_of_fields(names: tuple[str, ...]) -> Callable[[Any, core_schema.ValidationInfo], Any]:
    """:func:`_serde_required` for a model validated as its fields alone."""

    def check(fields: tuple[dict[str, Any], Any, set[str]], info: core_schema.ValidationInfo) -> Any:
        if info.context and info.context.get("serde"):
            for name in names:
                if name not in fields[2]:
                    raise ValueError(f"missing field `{name}`")
        return fields

    return check


def _dump_lossless(model: RecordModel, handler: core_schema.SerializerFunctionWrapHandler) -> dict[str, Any]:
    """What a lossless model writes: every field read or assigned, and the others only
    where they differ from their default (a list appended to since, say)."""
    data = handler(model)
    fields_set = model.__pydantic_fields_set__
    for name, default in json_defaults(type(model)).items():
        if name not in fields_set and name in data and data[name] == default:
            del data[name]
    return data


def json_defaults(cls: type[RecordModel]) -> dict[str, Any]:
    """Each optional field's default as JSON data (required fields are left out)."""
    found = cls.__dict__.get("_json_defaults")
    if found is None:
        found = {}
        for name, field in cls.model_fields.items():
            if field.is_required():
                continue
            value = field.get_default(call_default_factory=True)
            if isinstance(value, RecordModel):
                value = value.model_dump(mode="json")
            elif isinstance(value, StrEnum):
                value = value.value
            found[name] = value
        cls._json_defaults = found
    return found

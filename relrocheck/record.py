"""Typed, immutable records: what the data model takes from dataclasses, at a start-up cost
a build step can pay on every link.

`relrocheck check` runs after every link, mostly on small libraries, where start-up is most
of its time. The standard library's dataclasses cost a quarter of that (measured on libz
with Python 3.11: `check` 66 ms, 49 ms with these records): importing it pulls in `inspect`,
`ast`, `dis` and `tokenize`, and each of the ~50 classes has six methods generated and
compiled at every start. Here one `__init__` per class is compiled (its speed matters: a
record per section, hint, cluster...); equality, hashing, repr and the frozen guard are
shared functions reading the class's field names.

`@record` classes behave as `@dataclass(frozen=True)` ones do for this code base: keyword or
positional construction in field order, defaults and `field(default_factory=...)`, equality
and hashing over the fields with `compare=True`, a repr without the `repr=False` ones,
assignment refused (`FrozenInstanceError`), `replace` and `fields`. The instance dict holds
every field in declaration order, which the JSON encoder relies on. `@record(frozen=False)`
gives a mutable one (no hash, as dataclasses do). Type checkers read them as dataclasses
(PEP 681, `dataclass_transform`). Not supported, as nothing here uses them: inheritance
between records, ordering, `__post_init__`, `ClassVar` fields, slots.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar, dataclass_transform, overload

T = TypeVar("T")

_MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "MISSING"})()
_FIELDS = "__record_fields__"  # on each record class: its Field objects, in order


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


class Field:
    """A field's name and options, as `field()` declares them (the class attribute's value)."""

    __slots__ = ("name", "default", "default_factory", "repr", "compare")

    def __init__(self, default: Any = _MISSING, default_factory: Any = _MISSING,
                 repr: bool = True, compare: bool = True) -> None:
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("a field cannot have both a default and a default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | Any = _MISSING,
          repr: bool = True, compare: bool = True) -> Any:
    """A field with a default, a factory for a fresh default per instance (a dict), or left
    out of repr or of comparison and hashing."""
    return Field(default, default_factory, repr, compare)


@overload
def record(cls: type[T], /) -> type[T]: ...
@overload
def record(*, frozen: bool = True) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def record(cls: type[T] | None = None, /, *, frozen: bool = True) -> Any:
    """Make `cls` a record of its annotated fields: `@record` or `@record(frozen=False)`."""
    def wrap(cls: type[T]) -> type[T]:
        return _make(cls, frozen)

    return wrap if cls is None else wrap(cls)


def fields(obj: Any) -> tuple[Field, ...]:
    """The fields of a record class or instance, in declaration order."""
    found = getattr(obj, _FIELDS, None)
    if found is None:
        raise TypeError(f"{obj!r} is not a record")
    return found  # type: ignore[no-any-return]


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of the record `obj` with `changes` (by field name), through its `__init__`."""
    values = vars(obj)
    for f in fields(obj):
        if f.name not in changes:
            changes[f.name] = values[f.name]
    return type(obj)(**changes)


def _make(cls: type[T], frozen: bool) -> type[T]:
    annotations = cls.__dict__.get("__annotations__", {})
    declared: list[Field] = []
    for name in annotations:
        value = cls.__dict__.get(name, _MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        f.name = name
        declared.append(f)
        if isinstance(value, Field):
            # The class attribute is the plain default, as with dataclasses (none for a
            # factory: each instance gets its own).
            if f.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
    setattr(cls, _FIELDS, tuple(declared))
    cls.__init__ = _init(cls, declared)  # type: ignore[method-assign]
    cls.__repr__ = _repr  # type: ignore[method-assign]
    cls.__eq__ = _eq  # type: ignore[method-assign]
    compared = tuple(f.name for f in declared if f.compare)
    setattr(cls, "__record_compared__", compared)
    if frozen:
        cls.__hash__ = _hash  # type: ignore[method-assign]
        cls.__setattr__ = _refuse_assignment  # type: ignore[method-assign]
        cls.__delattr__ = _refuse_deletion  # type: ignore[method-assign]
    else:
        cls.__hash__ = None  # type: ignore[assignment]  # mutable and compared: unhashable
    return cls


def _init(cls: type, declared: list[Field]) -> Callable[..., None]:
    """The class's `__init__`, compiled once: it sets the instance dict in one step (every
    field, in order), as a frozen record cannot assign its attributes."""
    namespace: dict[str, Any] = {"_MISSING": _MISSING, "_set": object.__setattr__}
    parameters, entries = [], []
    for i, f in enumerate(declared):
        if f.default_factory is not _MISSING:
            namespace[f"_factory{i}"] = f.default_factory
            parameters.append(f"{f.name}=_MISSING")
            entries.append(f"{f.name!r}: _factory{i}() if {f.name} is _MISSING else {f.name}")
        elif f.default is not _MISSING:
            namespace[f"_default{i}"] = f.default
            parameters.append(f"{f.name}=_default{i}")
            entries.append(f"{f.name!r}: {f.name}")
        else:
            parameters.append(f.name)
            entries.append(f"{f.name!r}: {f.name}")
    source = (f"def __init__(self, {', '.join(parameters)}):\n"
              f"    _set(self, '__dict__', {{{', '.join(entries)}}})\n")
    exec(compile(source, f"<record {cls.__qualname__}>", "exec"), namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init  # type: ignore[no-any-return]


def _repr(self: Any) -> str:
    values = vars(self)
    shown = ", ".join(f"{f.name}={values[f.name]!r}" for f in fields(self) if f.repr)
    return f"{type(self).__qualname__}({shown})"


def _compared(self: Any) -> tuple[Any, ...]:
    values = vars(self)
    return tuple(values[name] for name in type(self).__record_compared__)


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _compared(self) == _compared(other)


def _hash(self: Any) -> int:
    return hash(_compared(self))


def _refuse_assignment(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_deletion(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")

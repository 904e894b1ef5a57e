"""The toolkit's data classes: what `dataclasses` makes of the same declarations (fields from the annotations,
`__init__`, `__repr__`, `__eq__`; with frozen=True immutable and hashable), at a fraction of the cost.

Why not `dataclasses` itself: on Python 3.11 it compiles every generated method with exec (about 1.2 ms for a
frozen class) and imports `inspect` (about 14 ms). A restart loads 37 data classes: about 50 ms, and a third of
the instructions of importing any command (callgrind: 866 M against 577 M for `import tmt_ops.cli.stop`), on the
critical path of every command an operator waits for. Here a class costs a few microseconds: its methods are
shared functions that read the class's field list.

The subset the toolkit uses, same behaviour: `@dataclass` and `@dataclass(frozen=True)`; `field(default=...)` and
`field(default_factory=...)`; a `ClassVar` annotation is not a field; `replace()`, `fields()`, `asdict()`;
FrozenInstanceError (an AttributeError) on assignment to a frozen instance. What it does not do (inheritance
between data classes, `__post_init__`, InitVar, keyword-only fields, ordering) is refused when the class is made,
never silently different.
"""

from __future__ import annotations

from typing import Any, Callable

FIELDS = "__data_fields__"  # the class attribute holding its fields, in declaration order
_MISSING: Any = object()


class FrozenInstanceError(AttributeError):
    """An assignment to (or deletion of) an attribute of a frozen instance."""


class Field:
    __slots__ = ("name", "default", "default_factory")

    def __init__(self, default: Any = _MISSING, default_factory: Callable[[], Any] | Any = _MISSING) -> None:
        self.name, self.default, self.default_factory = "", default, default_factory


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | Any = _MISSING) -> Any:
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory)


def dataclass(cls: type | None = None, /, *, frozen: bool = False) -> Any:
    def make(cls: type) -> type:
        return _make(cls, frozen)
    return make if cls is None else make(cls)


def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__origin__", annotation).__repr__()
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _make(cls: type, frozen: bool) -> type:
    if any(hasattr(base, FIELDS) for base in cls.__mro__[1:]):
        raise TypeError(f"{cls.__name__}: a data class cannot inherit from another here (tmt_ops/data.py)")
    if "__post_init__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: __post_init__ is not supported here (tmt_ops/data.py)")
    made: list[Field] = []
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, Field) else Field(value)
        spec.name = name
        if spec.default is _MISSING and spec.default_factory is _MISSING and made and \
                (made[-1].default is not _MISSING or made[-1].default_factory is not _MISSING):
            raise TypeError(f"non-default argument {name!r} follows default argument")
        if isinstance(spec.default, (list, dict, set)):
            raise ValueError(f"mutable default {type(spec.default)} for field {name} is not allowed: use "
                             "default_factory")
        if spec.default is not _MISSING:
            setattr(cls, name, spec.default)
        elif name in cls.__dict__:
            delattr(cls, name)
        made.append(spec)
    setattr(cls, FIELDS, tuple(made))
    methods = {"__init__": _init, "__repr__": _repr, "__eq__": _eq}
    if frozen:
        methods.update(__setattr__=_setattr, __delattr__=_delattr, __hash__=_hash)
    else:
        methods["__hash__"] = None  # equal by value and mutable: unhashable, as dataclasses makes it
    for name, method in methods.items():
        if name not in cls.__dict__:  # a method the class writes itself is kept (dataclasses keeps __repr__, ...)
            setattr(cls, name, method)
    return cls


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    specs = getattr(cls, FIELDS)
    if len(args) > len(specs):
        raise TypeError(f"{cls.__name__}() takes {len(specs)} positional arguments but {len(args)} were given")
    values = self.__dict__
    for spec, value in zip(specs, args):
        values[spec.name] = value
    for spec in specs[len(args):]:
        if spec.name in kwargs:
            values[spec.name] = kwargs.pop(spec.name)
        elif spec.default is not _MISSING:
            values[spec.name] = spec.default
        elif spec.default_factory is not _MISSING:
            values[spec.name] = spec.default_factory()
        else:
            raise TypeError(f"{cls.__name__}() missing required argument: {spec.name!r}")
    if kwargs:
        name = next(iter(kwargs))
        given = "multiple values for" if any(s.name == name for s in specs) else "an unexpected keyword"
        raise TypeError(f"{cls.__name__}() got {given} argument {name!r}")


def _values(self: Any) -> tuple:
    return tuple(getattr(self, spec.name) for spec in getattr(type(self), FIELDS))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{spec.name}={getattr(self, spec.name)!r}" for spec in getattr(type(self), FIELDS))
    return f"{type(self).__qualname__}({shown})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def fields(thing: Any) -> tuple[Field, ...]:
    """The fields of a data class or of one of its instances, in declaration order."""
    try:
        return getattr(thing if isinstance(thing, type) else type(thing), FIELDS)
    except AttributeError:
        raise TypeError("must be called with a data class or an instance of one") from None


def replace(obj: Any, /, **changes: Any) -> Any:
    """A new instance of obj's class: its fields, with `changes` instead."""
    for spec in fields(obj):
        changes.setdefault(spec.name, getattr(obj, spec.name))
    return type(obj)(**changes)


def asdict(obj: Any) -> dict[str, Any]:
    """The fields as a dict, data classes inside it, lists, tuples and dicts copied (as dataclasses.asdict does)."""
    return {spec.name: _copied(getattr(obj, spec.name)) for spec in fields(obj)}


def _copied(value: Any) -> Any:
    if hasattr(type(value), FIELDS):
        return asdict(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_copied(v) for v in value)
    if isinstance(value, dict):
        return type(value)((_copied(k), _copied(v)) for k, v in value.items())
    return value

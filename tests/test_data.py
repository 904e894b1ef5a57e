"""tmt_ops/data.py makes of a declaration what the standard library's dataclasses makes of it (the subset the toolkit
uses), and refuses at once what it does not do: each check runs the same declaration through both."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

from tmt_ops import data


def declare(maker, field, frozen: bool) -> type:
    @maker(frozen=frozen)
    class Order:
        kind: ClassVar[str] = "order"  # not a field
        service: str
        pid: int
        tags: tuple[str, ...] = ()
        labels: dict = field(default_factory=dict)
        note: str | None = field(default=None)

        def shown(self) -> str:
            return f"{self.service}/{self.pid}"

    return Order


@pytest.mark.parametrize("frozen", [True, False])
def test_same_fields_init_repr_and_equality_as_dataclasses(frozen):
    ours, std = declare(data.dataclass, data.field, frozen), declare(dataclasses.dataclass, dataclasses.field, frozen)
    for args, kwargs in [(("a", 1), {}), (("a",), {"pid": 2, "note": "n"}), ((), {"service": "b", "pid": 3,
                                                                                   "tags": ("x",)})]:
        mine, theirs = ours(*args, **kwargs), std(*args, **kwargs)
        assert repr(mine) == repr(theirs)
        assert [f.name for f in data.fields(mine)] == [f.name for f in dataclasses.fields(theirs)]
        assert data.asdict(mine) == dataclasses.asdict(theirs)
        assert mine == ours(*args, **kwargs) and mine != theirs and mine.shown() == theirs.shown()
    assert ours("a", 1).labels is not ours("a", 1).labels  # a factory per instance
    assert ours.kind == "order" and ours.tags == () and not hasattr(ours, "labels")  # as dataclasses leaves them
    for wrong in [((), {}), (("a", 1, (), {}, None, "extra"), {}), (("a", 1), {"colour": "red"}),
                  (("a", 1), {"service": "b"})]:
        with pytest.raises(TypeError) as mine:
            ours(*wrong[0], **wrong[1])
        with pytest.raises(TypeError):
            std(*wrong[0], **wrong[1])
        assert "Order()" in str(mine.value)


def test_frozen_is_immutable_and_hashable_by_value_mutable_is_not_hashable():
    frozen, mutable = declare(data.dataclass, data.field, True), declare(data.dataclass, data.field, False)
    one = frozen("a", 1, ("x",))
    with pytest.raises(data.FrozenInstanceError):
        one.pid = 2
    with pytest.raises(AttributeError):  # FrozenInstanceError is one, as the standard library's is
        del one.pid
    with pytest.raises(TypeError):  # a dict field makes the value unhashable, as with dataclasses
        hash(one)

    @data.dataclass(frozen=True)
    class Port:
        host: str
        port: int

    assert hash(Port("h", 1)) == hash(Port("h", 1)) and len({Port("h", 1), Port("h", 1), Port("h", 2)}) == 2
    other = mutable("a", 1)
    other.pid = 2
    assert other.pid == 2
    with pytest.raises(TypeError):
        hash(other)


def test_replace_makes_a_new_instance_and_checks_the_names():
    order = declare(data.dataclass, data.field, True)("a", 1, note="n")
    changed = data.replace(order, pid=2)
    assert (changed.pid, changed.service, changed.note, order.pid) == (2, "a", "n", 1)
    with pytest.raises(TypeError):
        data.replace(order, colour="red")
    with pytest.raises(TypeError):
        data.fields(object())


def test_nested_data_classes_become_dicts():
    @data.dataclass(frozen=True)
    class Inner:
        port: int

    @data.dataclass(frozen=True)
    class Outer:
        inner: Inner
        more: tuple[Inner, ...]

    assert data.asdict(Outer(Inner(1), (Inner(2),))) == {"inner": {"port": 1}, "more": ({"port": 2},)}


def test_what_it_does_not_do_is_refused_when_the_class_is_made():
    @data.dataclass(frozen=True)
    class Base:
        a: int

    with pytest.raises(TypeError, match="inherit"):
        @data.dataclass(frozen=True)
        class Child(Base):
            b: int
    with pytest.raises(TypeError, match="__post_init__"):
        @data.dataclass
        class Checked:
            a: int

            def __post_init__(self) -> None:
                pass
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @data.dataclass
        class Order:
            a: int = 0
            b: int
    with pytest.raises(ValueError, match="mutable default"):
        @data.dataclass
        class Shared:
            a: list = []  # noqa: RUF012 (the point of the test)

"""relrocheck.record: frozen typed records, held to what dataclasses do for the same class."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from typing import Mapping

import pytest

from relrocheck.record import FrozenInstanceError, field, fields, record, replace


@record
class Point:
    x: int
    y: int = 0
    tags: Mapping[str, int] = field(default_factory=dict)
    cache: tuple[int, ...] = field(default=(), repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class ReferencePoint:
    x: int
    y: int = 0
    tags: Mapping[str, int] = dataclasses.field(default_factory=dict)
    cache: tuple[int, ...] = dataclasses.field(default=(), repr=False, compare=False)


@record
class Pair:
    a: int
    b: int = field(default=0, compare=False)


@record(frozen=False)
class Counter:
    name: str
    count: int = 0


def test_construction_defaults_and_field_order_match_dataclasses() -> None:
    for args, kwargs in (((1,), {}), ((1, 2), {}), ((), {"x": 3, "tags": {"a": 1}}),
                         ((1, 2, {"b": 2}, (7,)), {})):
        ours, theirs = Point(*args, **kwargs), ReferencePoint(*args, **kwargs)
        assert vars(ours) == vars(theirs)
        assert list(vars(ours)) == ["x", "y", "tags", "cache"]
    assert [f.name for f in fields(Point)] == [f.name for f in dataclasses.fields(ReferencePoint)]
    assert Point.y == ReferencePoint.y == 0
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, z=2)  # type: ignore[call-arg]


def test_each_instance_gets_its_own_default_from_a_factory() -> None:
    first, second = Point(1), Point(2)
    assert first.tags == {} and first.tags is not second.tags


def test_equality_and_hash_over_compared_fields_only() -> None:
    assert Point(1, 2, cache=(1,)) == Point(1, 2, cache=(2,))
    assert Point(1, 2) != Point(1, 3)
    assert Point(1) != ReferencePoint(1)  # another class is never equal
    assert hash(Pair(1, 2)) == hash(Pair(1, 3)) == hash(dataclasses.astuple(ReferencePoint(1))[:1])
    assert len({Pair(1), Pair(1, 5), Pair(2)}) == 2
    with pytest.raises(TypeError):
        hash(Point(1))  # a dict field is unhashable, as with dataclasses


def test_frozen_refuses_assignment_and_deletion() -> None:
    p = Point(1)
    with pytest.raises(FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.x  # type: ignore[misc]
    assert p.x == 1


def test_repr_leaves_out_repr_false_fields_as_dataclasses_do() -> None:
    ours = repr(Point(1, 2, {"a": 1}, (5,)))
    theirs = repr(ReferencePoint(1, 2, {"a": 1}, (5,)))
    assert ours == theirs.replace("ReferencePoint", "Point")
    assert "cache" not in ours


def test_replace_copies_with_changes_through_init() -> None:
    p = Point(1, 2, {"a": 1})
    q = replace(p, y=5)
    assert (q.x, q.y, q.tags) == (1, 5, {"a": 1}) and p.y == 2
    with pytest.raises(TypeError):
        replace(p, z=1)
    with pytest.raises(TypeError):
        fields(object())


def test_mutable_record_assigns_and_is_unhashable() -> None:
    c = Counter("a")
    c.count += 1
    assert c == Counter("a", 1)
    with pytest.raises(TypeError):
        hash(c)


def test_records_pickle_and_copy() -> None:
    p = Point(1, 2, {"a": 1}, (3,))
    q = pickle.loads(pickle.dumps(p))
    assert q == p and q.cache == (3,)


def test_a_command_imports_no_dataclasses() -> None:
    """The point of records: a check or report run compiles no dataclass machinery."""
    code = ("import sys, relrocheck.cli, relrocheck.commands.check, relrocheck.commands.report,"
            " relrocheck.analyze, relrocheck.serialize, relrocheck.policy, relrocheck.gate,"
            " relrocheck.baseline, relrocheck.render.check;"
            " print(sorted(m for m in ('dataclasses', 'inspect', 'ast') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "[]"

"""A component's return value inside a decorator pipeline: a stand-in that waits only when
it is used (ClearML's lazy evaluation).

Passed to another component, it is a reference to the step's artifact (the engine resolves
it, nothing waits); used any other way (printed, indexed, added to, iterated), it waits
for its step and becomes the value the step returned.
"""

from __future__ import annotations

import operator
from typing import Any

_UNSET = object()


class LazyResult:
    """The return value `name` of pipeline step `step`, fetched by `pipeline` when used."""

    __slots__ = ("_pipeline", "_step", "_name", "_value")

    def __init__(self, pipeline, step: str, name: str):
        object.__setattr__(self, "_pipeline", pipeline)
        object.__setattr__(self, "_step", step)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_value", _UNSET)

    def _resolve(self) -> Any:
        value = object.__getattribute__(self, "_value")
        if value is _UNSET:
            pipeline = object.__getattribute__(self, "_pipeline")
            value = pipeline.result_of(
                object.__getattribute__(self, "_step"), object.__getattribute__(self, "_name")
            )
            object.__setattr__(self, "_value", value)
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resolve(), name)

    def __repr__(self) -> str:
        return repr(self._resolve())

    def __str__(self) -> str:
        return str(self._resolve())

    def __format__(self, spec: str) -> str:
        return format(self._resolve(), spec)

    def __bool__(self) -> bool:
        return bool(self._resolve())

    def __len__(self) -> int:
        return len(self._resolve())

    def __iter__(self):
        return iter(self._resolve())

    def __contains__(self, item) -> bool:
        return item in self._resolve()

    def __getitem__(self, key):
        return self._resolve()[key]

    def __call__(self, *args, **kwargs):
        return self._resolve()(*args, **kwargs)

    def __hash__(self) -> int:
        return hash(self._resolve())

    def __int__(self) -> int:
        return int(self._resolve())

    def __float__(self) -> float:
        return float(self._resolve())

    def __index__(self) -> int:
        return operator.index(self._resolve())

    def __array__(self, *args, **kwargs):
        import numpy

        return numpy.asarray(self._resolve(), *args, **kwargs)

    def __neg__(self):
        return -self._resolve()

    def __pos__(self):
        return +self._resolve()

    def __abs__(self):
        return abs(self._resolve())


def _binary(op):
    def forward(self, other):
        return op(self._resolve(), _plain(other))

    def reflected(self, other):
        return op(_plain(other), self._resolve())

    return forward, reflected


def _plain(value: Any) -> Any:
    return value._resolve() if isinstance(value, LazyResult) else value


for _name, _op in {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "matmul": operator.matmul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
    "lshift": operator.lshift,
    "rshift": operator.rshift,
}.items():
    _forward, _reflected = _binary(_op)
    setattr(LazyResult, f"__{_name}__", _forward)
    setattr(LazyResult, f"__r{_name}__", _reflected)

for _name, _op in {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}.items():
    setattr(LazyResult, f"__{_name}__", _binary(_op)[0])


def reference(value: LazyResult) -> str:
    """`${step.artifacts.NAME}`: how a component call passes a result on without waiting.
    (A function, not an attribute: every attribute of the stand-in is the value's.)"""
    step = object.__getattribute__(value, "_step")
    return f"${{{step}.artifacts.{object.__getattribute__(value, '_name')}}}"


def step_of(value: LazyResult) -> str:
    return object.__getattribute__(value, "_step")


def plain(value: Any) -> Any:
    """`value` with every LazyResult in it (also inside lists, tuples and dicts) resolved."""
    if isinstance(value, LazyResult):
        return value._resolve()
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain(item) for item in value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value

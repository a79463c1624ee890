"""Frozen value classes without generated methods (issue 14).

``Frozen`` makes each subclass a dataclass whose ``__eq__``, ``__hash__``, ``__repr__``
and frozen ``__setattr__``/``__delattr__`` are shared, not generated and exec'd per
class (~1 ms a class at every command's start). They behave as a frozen dataclass's:
equal by type and field values, hashed by them, shown as ``Name(field=value, ...)``; a
field is set once, by ``__init__``, and nothing else is set. A subclass is declared
without ``@dataclass`` (a frozen one cannot derive from this non-frozen dataclass).
The model's values use the generated ``__init__``; config's sections bring their own
(``_dataclass_init = False``).
"""

from __future__ import annotations

import dataclasses
import reprlib
import typing
from typing import Any, ClassVar


@typing.dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
class Frozen:
    __dataclass_fields__: ClassVar[dict[str, Any]]  # (each subclass's, for type checkers)
    _dataclass_init: ClassVar[bool] = True  # False: the class brings its own __init__
    _compared: ClassVar[tuple[str, ...]] = ()
    _shown: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(cls, init=cls._dataclass_init, eq=False, repr=False)
        found = dataclasses.fields(cls)  # type: ignore[arg-type]
        cls._compared = tuple(f.name for f in found if f.compare)
        cls._shown = tuple(f.name for f in found if f.repr)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__ or name not in self.__dataclass_fields__:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self._compared])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._shown)
        return f"{self.__class__.__qualname__}({shown})"

"""A cheaper constructor for the frozen slotted dataclasses a check makes by the hundred (a BatchCheck's inputs,
queries, logged checks, decisions): dataclasses' frozen __init__ sets each field through object.__setattr__, a
generic attribute look-up per field, which made building one of them cost about ten times a mutable one's (1.3 us
for nine fields). `quick_init` gives the class an __init__ with the same signature that sets each field through its
slot's own descriptor instead: about 40 % less. Nothing else changes: the instance stays frozen (assignment still
raises FrozenInstanceError), and equality, hashing, repr and fields are dataclasses' own."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Use as a decorator above @dataclass(frozen=True, slots=True), on a class whose fields have plain defaults
    (no default_factory, no InitVar, no __post_init__)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__ or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: quick_init is for frozen slotted dataclasses without __post_init__")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    namespace: dict[str, Any] = {}
    args, body = [], []
    for f in fields:
        if not f.init or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: quick_init takes fields with plain defaults only")
        namespace[f"_set_{f.name}"] = getattr(cls, f.name).__set__  # the slot's member descriptor
        if f.default is dataclasses.MISSING:
            args.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            args.append(f"{f.name}=_default_{f.name}")
        body.append(f"    _set_{f.name}(self, {f.name})")
    source = f"def __init__(self, {', '.join(args)}):\n" + "\n".join(body or ["    pass"]) + "\n"
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    setattr(cls, "__init__", init)  # noqa: B010
    return cls

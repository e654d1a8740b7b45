"""One registry of methods, by dotted snake_case name, and one factory."""

from __future__ import annotations

import inspect

__all__ = [
    "register",
    "create_analyzer",
    "available_methods",
    "keywords",
    "METHODS",
    "COMMON_KEYWORDS",
    "UnknownMethodError",
]

#: name -> analyzer class, filled by the ``@register`` decorators of the method modules.
METHODS: dict[str, type] = {}


def register(name: str):
    """Class decorator adding an analyzer to :data:`METHODS` under ``name``."""

    def decorate(cls):
        if name in METHODS:
            raise ValueError(f"method name {name!r} is already registered to {METHODS[name]}")
        METHODS[name] = cls
        cls.method_name = name
        return cls

    return decorate


class UnknownMethodError(KeyError, ValueError):
    """An unknown method name: a ``KeyError`` (a name lookup) and a ``ValueError`` (a bad
    argument value), so either ``except`` catches it. The message lists the valid names."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


def available_methods() -> list[str]:
    """The registered method names, sorted."""
    return sorted(METHODS)


#: Keywords every method accepts in :func:`create_analyzer`; a method without input bounds
#: ignores ``low`` and ``high``.
COMMON_KEYWORDS = ("target_id", "relu", "low", "high")


def keywords(cls) -> list[str]:
    """The keyword arguments the constructor of ``cls`` accepts (after ``model``)."""
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def create_analyzer(name: str, model, **kwargs):
    """Create the analyzer registered under ``name`` for ``model``.

    Every method accepts the common keywords ``target_id``, ``relu``, ``low`` and ``high``
    (methods without input bounds ignore the last two), so one loop over the registry serves
    all methods; other keywords are the method's own (see its class).

    Raises
    ------
    UnknownMethodError
        If ``name`` is unknown (both a ``KeyError`` and a ``ValueError``); the message lists
        the valid names.
    TypeError
        For a keyword the method does not take; the message lists the valid ones.
    """
    try:
        cls = METHODS[name]
    except KeyError:
        raise UnknownMethodError(
            f"unknown method {name!r}; available methods: {', '.join(available_methods())}"
        ) from None
    valid = keywords(cls)
    unknown = sorted(set(kwargs) - set(valid) - set(COMMON_KEYWORDS))
    if unknown:
        raise TypeError(
            f"method {name!r} ({cls.__name__}) got unexpected keyword arguments {unknown}; "
            f"valid: {', '.join(sorted(set(valid) | set(COMMON_KEYWORDS)))}"
        )
    return cls(model, **{k: v for k, v in kwargs.items() if k in valid})

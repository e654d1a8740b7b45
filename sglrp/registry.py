"""One registry of methods, by dotted snake_case name, and one factory."""

from __future__ import annotations

__all__ = ["register", "create_analyzer", "available_methods", "METHODS"]

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


def available_methods() -> list[str]:
    """The registered method names, sorted."""
    return sorted(METHODS)


def create_analyzer(name: str, model, **kwargs):
    """Create the analyzer registered under ``name`` for ``model``.

    Raises
    ------
    KeyError
        If ``name`` is unknown; the message lists the valid names.
    """
    try:
        cls = METHODS[name]
    except KeyError:
        raise KeyError(
            f"unknown method {name!r}; available methods: {', '.join(available_methods())}"
        ) from None
    return cls(model, **kwargs)

"""The domain registry: one decorator per domain, and the spec schema is built from it.

Adding a domain is one class in ``synth/domains/`` with ``@register_domain("name", ...)``; the
decorator derives its spec model (the class's ``Params`` plus a ``type: Literal["name"]``
discriminator), so ``synthlm synth list``, spec validation and the manifest pick it up.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Literal

from pydantic import create_model

if TYPE_CHECKING:
    from synthlm.synth.domain import Domain

DOMAINS: dict[str, type[Domain]] = {}


def register_domain(name: str, *, family: str, description: str, reference: str = ""):
    """Class decorator: register a :class:`~synthlm.synth.domain.Domain` under ``name``.

    ``reference`` names the paper and the file of its code that the domain reproduces exactly
    (shown by ``synth list`` and in the dataset card); leave it empty for synthlm's own tasks.
    """

    def decorate(cls: type[Domain]) -> type[Domain]:
        if name in DOMAINS:
            raise ValueError(f"domain type {name!r} is registered twice")
        base = cls.__dict__.get("Params") or cls.Params
        cls.Params = create_model(  # type: ignore[misc]
            "".join(part.title() for part in name.split("_")) + "Spec",
            __base__=base,
            __doc__=description,
            type=(Literal[name], name),
        )
        cls.type_name, cls.family, cls.description = name, family, description
        cls.reference = reference
        DOMAINS[name] = cls
        return cls

    return decorate


def load_domains() -> dict[str, type[Domain]]:
    """Import every domain module (registration happens on import) and return the registry."""
    import synthlm.synth.domains  # noqa: F401  (side effect: registration)

    return DOMAINS


def domain_class(name: str) -> type[Domain]:
    domains = load_domains()
    if name not in domains:
        raise KeyError(unknown_type_message(name))
    return domains[name]


def unknown_type_message(name: object) -> str:
    known = sorted(load_domains())
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown domain type {name!r}{hint}; known types: {', '.join(known)}"

"""The domain registry: one decorator per domain, and the spec schema is built from it.

Adding a domain is one class with ``@register_domain("name", ...)``, in ``synth/domains/`` or in
an installed plugin (the ``synthlm.plugins`` entry points, see :mod:`synthlm.registry`); the
decorator derives its spec model (the class's ``Params`` plus a ``type: Literal["name"]``
discriminator), so ``synthlm synth list``, spec validation and the manifest pick it up. It
also refuses a class that lacks what generation or ``synth verify`` will call, at import,
instead of a ``NotImplementedError`` halfway through a dataset or a verify that passes nothing.
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
        check_complete(name, cls)
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


def check_complete(name: str, cls: type[Domain]) -> None:
    """Raise TypeError when ``cls`` lacks a method generation or verification needs."""
    from synthlm.synth.domain import Domain

    missing = [] if _overrides(cls, Domain, "body") else ["body(rng, n)"]
    if not cls.is_task:
        if not _overrides(cls, Domain, "check_language"):
            missing.append("check_language(body) (is_task = False: a language without answers)")
    elif not (_overrides(cls, Domain, "solve") or _overrides(cls, Domain, "check_answer")):
        missing.append("solve(prompt), or check_answer(prompt, answer) when several are right")
    if missing:
        raise TypeError(
            f"domain {name!r} ({cls.__module__}.{cls.__qualname__}) must implement "
            f"{' and '.join(missing)}; see docs/architecture.md, 'A synthetic domain'"
        )


def _overrides(cls: type, base: type, method: str) -> bool:
    return getattr(cls, method) is not getattr(base, method)


def load_domains() -> dict[str, type[Domain]]:
    """Every domain: the built-in modules' and the plugins' (registration happens on import).

    The spec schema is a union over all of them and a dataset's worker processes rebuild it,
    so this loads the plugins (once per process) rather than waiting for a missing name.
    """
    import synthlm.synth.domains  # noqa: F401  (side effect: registration)
    from synthlm.registry import load_plugins

    load_plugins()
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

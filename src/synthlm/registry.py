"""Named registries: the one mechanism behind every extension point.

Objectives, optimizers, schedules, evaluators, sentence splitters, model architectures, LLM
backends, fine-tuning metrics and tasks, report panels, tokenizer trainers ... each keep a
:class:`Registry`. Adding one is a decorator on a new class or function (or one ``add`` call);
looking one up by a name from a config gives the same error everywhere: what is unknown, the
closest known name, and the full list.

Typed options: an entry may register a pydantic model of the options it takes
(``register("adamw", options=AdamWOptions)``). The config section that names the entry then
validates its options against that model (see :func:`validate_options`): while the config
loads (``optim``), or as the planner's first step where the registry's entries import torch
(``objective``, :func:`synthlm.train.config.check_objective`). Either way a misspelt option is
reported with the file or override that set it, before any work, instead of as a late
``TypeError`` from a constructor. This is the pattern of OLMo-core's ``OptimConfig.register``
and of ``synth/registry.py``'s domain specs.

Lazy entries: a package with many entries may name each with the module that registers it
(``OBJECTIVES.lazy("depth", "synthlm.objectives.depth")``). The name is known at once (listings,
did-you-mean, ``in``); the module is imported on first use of that entry, so a plain training
run does not import every objective (DEPTH's sentence splitter, T5 noise) it never uses.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from synthlm.config import _type_name
from synthlm.errors import ConfigError

T = TypeVar("T")


class NoOptions(BaseModel):
    """The options model of an entry that takes none: any key is an error."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class Registry(Generic[T]):
    """A mapping of names to implementations, filled by :meth:`register`."""

    def __init__(self, what: str) -> None:
        self.what = what  # "objective", "optimizer", ...: used in error messages
        self._items: dict[str, T] = {}
        self._options: dict[str, type[BaseModel]] = {}
        self._lazy: dict[str, str] = {}  # name -> module that registers it when imported

    def lazy(self, name: str, module: str) -> None:
        """Know ``name`` now; import ``module`` (which registers it) when it is first used."""
        if name not in self._items:  # already imported and registered: nothing to defer
            self._lazy[name] = module

    def _load(self, name: str) -> None:
        """Import the module of a lazy entry; it must register the name it was declared with."""
        module = self._lazy.get(name)
        if module is None:
            return
        importlib.import_module(module)
        if name not in self._items:
            raise RuntimeError(f"{module} was declared to register {self.what} '{name}'")

    def _known(self) -> list[str]:
        return [*self._items, *(n for n in self._lazy if n not in self._items)]

    def register(self, name: str, *, options: type[BaseModel] | None = None) -> Callable[[T], T]:
        """Decorator: ``@OBJECTIVES.register("clm")``; ``options``: the entry's typed options."""

        def decorate(item: T) -> T:
            self.add(name, item, options=options)
            return item

        return decorate

    def add(self, name: str, item: T, *, options: type[BaseModel] | None = None) -> T:
        """Register ``item`` under ``name`` (the non-decorator form, for data entries)."""
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.what} '{name}' is registered twice")
        self._items[name] = item
        self._lazy.pop(name, None)
        if options is not None:
            self._options[name] = options
        return item

    def options_model(self, name: str) -> type[BaseModel]:
        """The typed options of ``name`` (:class:`NoOptions` when it registered none)."""
        self.get(name)
        return self._options.get(name, NoOptions)

    def unknown(self, name: str) -> str:
        """The message for a name that is not registered (for ConfigError or a validator)."""
        known = self._known()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown {self.what} '{name}'{hint}; known: {', '.join(sorted(known))}"

    def get(self, name: str) -> T:
        if name not in self:
            raise ConfigError(self.unknown(name))
        self._load(name)
        return self._items[name]

    def find(self, name: str) -> T | None:
        """The entry, or None (for validators that leave an unknown name to another check)."""
        self._load(name)
        return self._items.get(name)

    def check(self, name: str) -> str:
        """For pydantic validators: raise ValueError (which the config system locates)."""
        if name not in self:
            raise ValueError(self.unknown(name))
        return name

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self._known())

    def __len__(self) -> int:
        return len(self._known())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __setitem__(self, name: str, item: T) -> None:
        """``REGISTRY[name] = item``: as :meth:`add` (``monkeypatch.setitem`` in tests)."""
        self.add(name, item)

    def __delitem__(self, name: str) -> None:
        """Unregister (tests that register a temporary entry clean up with ``del``)."""
        if name not in self:
            raise KeyError(name)
        self._lazy.pop(name, None)
        self._items.pop(name, None)
        self._options.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._known())

    def items(self) -> Iterator[tuple[str, T]]:
        """Every entry, importing the lazy ones (listings that show what each entry is)."""
        for name in list(self._lazy):
            self._load(name)
        return iter(self._items.items())

    def values(self) -> Iterator[T]:
        return (item for _, item in self.items())


def validate_options(
    model: type[BaseModel], options: Mapping[str, Any], *, key: str, loc: tuple[str, ...] = ()
) -> BaseModel:
    """Validate ``options`` against an entry's typed options model.

    Raises a ``ValidationError`` whose locations are the option keys below ``loc`` (inside a
    pydantic validator, pydantic prefixes them with the section's path), which
    ``synthlm.config`` turns into lines naming the file or override that set each key; the
    messages name the allowed keys, as ``synthlm.config`` does for sections.
    ``key`` is the dotted path of the options as the user writes it (``optim.options``); ``loc``
    the path from the validating section down to them (``("options",)``).
    """
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        errors = [_located(model, e, key, loc) for e in exc.errors()]
        raise ValidationError.from_exception_data(model.__name__, errors) from None


def name_error(registry: Registry[Any], name: str, *, loc: tuple[str, ...]) -> ValidationError:
    """A located error for a name ``registry`` lacks (raised where options are checked)."""
    message = PydanticCustomError("invalid_option", _braces(registry.unknown(name)))
    error: InitErrorDetails = {"type": message, "loc": loc, "input": name}
    return ValidationError.from_exception_data(registry.what, [error])


def _braces(message: str) -> str:
    """Braces would be read as format fields by ``PydanticCustomError``."""
    return message.replace("{", "(").replace("}", ")")


def _located(
    model: type[BaseModel], err: Any, key: str, prefix: tuple[str, ...]
) -> InitErrorDetails:
    """One option error, re-worded with the allowed keys (``err`` is a pydantic error dict)."""
    loc = tuple(err["loc"])
    name = str(loc[0]) if loc else ""
    if err["type"] == "extra_forbidden":
        allowed = sorted(model.model_fields)
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
        if close:
            message = f"unknown key (did you mean '{key}.{close[0]}'?)"
        else:
            message = f"unknown key (allowed keys here: {', '.join(allowed) or 'none'})"
    else:
        field = model.model_fields.get(name)
        expected = _type_name(field.annotation) if field else ""
        message = err["msg"].removeprefix("Value error, ")
        message = f"expected {expected}: {message}" if expected else message
        if not isinstance(err.get("input"), (dict, list)):
            message += f" (got {err.get('input')!r})"
    error = PydanticCustomError("invalid_option", _braces(message))
    return {"type": error, "loc": (*prefix, *loc), "input": err.get("input")}

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

Plugins: an installed distribution extends synthlm without editing it by naming a module in the
``synthlm.plugins`` entry-point group (in its pyproject's
``[project.entry-points."synthlm.plugins"]`` table: ``mytasks = "mytasks.synthlm_plugin"``);
importing that module registers its domains, objectives, optimizers or backends with the usual
decorators. :func:`load_plugins` imports them all, once per process, and only when a name is
missing: the first lookup of a name no registry holds, or the first listing (``synth list``,
the known names in an error, the synthetic spec schema, a union over every domain). Scanning
the entry points costs about 5 ms (190 installed distributions; plus 9 ms to import
``importlib.metadata`` where nothing has yet), which a run naming only built-in entries never
pays: synthlm's start-up is measured against a bare PyTorch loop.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from synthlm.config import _type_name
from synthlm.errors import ConfigError, UserError

T = TypeVar("T")

PLUGIN_GROUP = "synthlm.plugins"


class PluginError(UserError):
    """An installed plugin failed to import (a user's environment, not a synthlm bug)."""


_plugins: dict[str, Any] = {"state": "new"}  # "new", "loading", "loaded" or the PluginError


def load_plugins() -> None:
    """Import every ``synthlm.plugins`` entry point, once per process (see the module docstring).

    The registries call this on a miss or a listing, never at start-up. A plugin that fails to
    import raises :class:`PluginError` naming it, here and on every later call, so a missing
    domain or objective is never explained by a plugin skipped in silence. A call made while the
    plugins load (a plugin that looks a name up as it registers) returns at once.
    """
    state = _plugins["state"]
    if isinstance(state, PluginError):
        raise state
    if state != "new":
        return
    _plugins["state"] = "loading"
    try:
        for entry in _entry_points():
            _import_plugin(entry)
    except PluginError as exc:
        _plugins["state"] = exc
        raise
    _plugins["state"] = "loaded"


def _entry_points() -> list[Any]:
    """The group's entry points, sorted so that plugins register in the same order everywhere."""
    from importlib.metadata import entry_points  # 9 ms to import: paid only when plugins load

    return sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: (e.name, e.value))


def _import_plugin(entry: Any) -> None:
    """Import one plugin's module (its import registers what it adds)."""
    try:
        entry.load()
    except Exception as exc:
        dist = getattr(entry, "dist", None)
        origin = f", from {dist.name} {dist.version}" if dist is not None else ""
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PluginError(
            f"plugin '{entry.name}' (entry point {PLUGIN_GROUP}: {entry.name} = {entry.value}"
            f"{origin}) failed to import: {type(exc).__name__}{': ' + detail if detail else ''}"
            "; fix or uninstall it (synthlm --debug shows the traceback)"
        ) from exc


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
        """Every name, the plugins' included (a listing is when a user may look for theirs)."""
        load_plugins()
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
        if name not in self:
            return None
        self._load(name)
        return self._items.get(name)

    def check(self, name: str) -> str:
        """For pydantic validators: raise ValueError (which the config system locates)."""
        if name not in self:
            raise ValueError(self.unknown(name))
        return name

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is registered; a miss first loads the plugins, which may add it."""
        if name in self._items or name in self._lazy:
            return True
        load_plugins()
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
        load_plugins()
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

"""One config system for every command: YAML files merged in order, dotted overrides, pydantic.

Why a small layer of our own on top of pydantic: users stack several YAML files (GPT-NeoX style)
and then override single keys on the command line, and when something is wrong they need to
know *which file or override* set the bad value, not just the key path pydantic reports. So we
record, while merging, where every key came from, and turn pydantic's errors into messages like

    run.yaml: optim.warmup_step: unknown key (did you mean 'optim.warmup_steps'?)
    override 'optim.lr=abc': optim.lr: expected float: Input should be a valid number

Schemas live next to the code that uses them (``synth/spec.py``, ``train/config.py``); this
module only knows how to load, merge, override, validate and dump them.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator

from synthlm.errors import ConfigError

Schema = TypeVar("Schema", bound=BaseModel)
KeyPath = tuple[str | int, ...]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True, protected_namespaces=())

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        """pydantic reads ``true`` as 1 for a number (``train.batch_size=true`` ran batches of
        one); a number field refuses a boolean instead."""
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name)
                if (
                    isinstance(value, bool)
                    and field is not None
                    and _numbers_only(field.annotation)
                ):
                    raise ValueError(f"{name}: expected a number, got {str(value).lower()}")
        return data

    def changed_from_default(self, keys: Sequence[str]) -> list[str]:
        """Those of ``keys`` set to other than their defaults. A key that only some settings
        read is refused by that test: a saved config.yaml lists every key at its default, so
        a default says nothing about what the user meant."""
        return [key for key in keys if getattr(self, key) != type(self).model_fields[key].default]


def _numbers_only(annotation: Any) -> bool:
    """Whether a field's type takes numbers and not booleans (``int``, ``float | None``, a
    constrained int, ``int | Literal['epoch']``)."""
    kinds = _leaf_types(annotation)
    return bool(kinds & {int, float}) and bool not in kinds


def _leaf_types(annotation: Any) -> set[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaf_types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_leaf_types(arg) for arg in typing.get_args(annotation)))
    if origin is typing.Literal:
        return {type(arg) for arg in typing.get_args(annotation)}
    return {annotation}


# ---------------------------------------------------------------------------------------------
# Human-friendly sizes ("5M" tokens)

_SIZE_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMBGT]?)\s*$", re.I)


def parse_count(value: Any) -> int:
    """Parse a count written as ``5000``, ``"5M"``, ``"1.5B"`` or ``"10K"`` into an int."""
    if isinstance(value, bool):
        raise ValueError("expected a count such as 5000 or '5M', got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    match = _SIZE_RE.match(str(value))
    if not match:
        raise ValueError(f"expected a count such as 5000, '10K', '5M' or '1.5B', got {value!r}")
    number, suffix = match.groups()
    return round(float(number) * _SIZE_SUFFIX[suffix.upper()])


Count = Annotated[int, BeforeValidator(parse_count)]
"""An int field that also accepts ``"5M"``-style strings."""


# ---------------------------------------------------------------------------------------------
# Loading and merging


CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read one YAML (or JSON) file that must hold a mapping."""
    path = Path(path)
    if not path.is_file():
        hint = ""
        if re.fullmatch(r"[A-Za-z_]\w*(\.\w+)+", str(path)) and path.suffix not in CONFIG_SUFFIXES:
            hint = f" (an override is written KEY=VALUE, e.g. {path}=...)"
        raise ConfigError(f"{path}: config file not found{hint}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        byte = f"byte 0x{exc.object[exc.start]:02x} at offset {exc.start}"
        raise ConfigError(
            f"{path}: not UTF-8 text ({byte}); a config must be a YAML or JSON text file "
            f"saved as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(path, exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys, got {type(data).__name__}"
        )
    return data


def yaml_error(path: str | Path, exc: yaml.YAMLError) -> str:
    """PyYAML's message on one line, led by ``FILE:LINE:COLUMN`` as compilers write it: its own
    text spans several lines, quotes the source and calls the file ``<unicode string>``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    context, started = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and started is not None:
        problem += f" ({context}, at line {started.line + 1}, column {started.column + 1})"
    elif context:
        problem += f" ({context})"
    return f"{where}: not valid YAML: {problem}"


def deep_merge(
    base: dict[str, Any],
    update: Mapping[str, Any],
    origins: dict[KeyPath, str],
    source: str,
    prefix: KeyPath = (),
) -> dict[str, Any]:
    """Merge ``update`` into ``base`` in place (later wins, nested mappings merged)."""
    for key, value in update.items():
        path = (*prefix, key)
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            origins.setdefault(path, source)
            deep_merge(base[key], value, origins, source, path)
        else:
            base[key] = _plain(value)
            _forget_below(origins, path)
            _record(origins, path, value, source)
    return base


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _record(origins: dict[KeyPath, str], path: KeyPath, value: Any, source: str) -> None:
    origins[path] = source
    if isinstance(value, Mapping):
        for key, sub in value.items():
            _record(origins, (*path, key), sub, source)
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            _record(origins, (*path, index), sub, source)


def _forget_below(origins: dict[KeyPath, str], path: KeyPath) -> None:
    for key in [k for k in origins if len(k) > len(path) and k[: len(path)] == path]:
        del origins[key]


# ---------------------------------------------------------------------------------------------
# Dotted overrides: optim.lr=3e-4 data.sources.0.weight=0.5

_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def parse_override_value(text: str) -> Any:
    """YAML scalar/flow parsing, plus ``3e-4`` as a float (YAML 1.1 would keep it a string)."""
    if _FLOAT_RE.match(text.strip()) and not text.strip().lstrip("+-").isdigit():
        return float(text)
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def split_override(override: str) -> tuple[list[str], str]:
    key, sep, value = override.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise ConfigError(
            f"override {override!r}: expected KEY=VALUE with a dotted key, e.g. optim.lr=3e-4"
        )
    return key.strip().split("."), value


def apply_override(tree: dict[str, Any], override: str, origins: dict[KeyPath, str]) -> None:
    """Set one dotted key in ``tree``; numeric parts index into lists."""
    parts, text = split_override(override)
    value = parse_override_value(text)
    node: Any = tree
    path: list[str | int] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        key: str | int = part
        if isinstance(node, list):
            if not part.lstrip("-").isdigit():
                raise ConfigError(
                    f"override {override!r}: {'.'.join(parts[:depth]) or 'top level'} is a "
                    f"list; use a number, not {part!r}"
                )
            key = int(part)
            if not -len(node) <= key < len(node):
                raise ConfigError(
                    f"override {override!r}: index {key} is out of range for "
                    f"{'.'.join(parts[:depth])} (it has {len(node)} items)"
                )
            key = key % len(node)
        elif not isinstance(node, dict):
            raise ConfigError(
                f"override {override!r}: {'.'.join(parts[:depth])} is a "
                f"{type(node).__name__}, not a mapping"
            )
        path.append(key)
        if last:
            node[key] = value
            _forget_below(origins, tuple(path))
            _record(origins, tuple(path), value, f"override {override!r}")
        else:
            if isinstance(node, dict) and key not in node:
                node[key] = {}  # created by this override, so an error inside it is its fault
                origins[tuple(path)] = f"override {override!r}"
            node = node[key]


# ---------------------------------------------------------------------------------------------
# Validation with helpful errors


def load_config(
    schema: type[Schema],
    sources: Sequence[str | Path | Mapping[str, Any]] = (),
    overrides: Sequence[str] = (),
) -> Schema:
    """Merge YAML files / mappings in order, apply dotted overrides, validate into ``schema``."""
    return validate(schema, *merge_sources(sources, overrides))


def merge_sources(
    sources: Sequence[str | Path | Mapping[str, Any]] = (), overrides: Sequence[str] = ()
) -> tuple[dict[str, Any], dict[KeyPath, str]]:
    """The merged tree and, for every key path, the file or override that set it."""
    tree: dict[str, Any] = {}
    origins: dict[KeyPath, str] = {}
    for source in sources:
        if isinstance(source, Mapping):
            deep_merge(tree, source, origins, "defaults")
        else:
            deep_merge(tree, load_yaml(source), origins, str(source))
    for override in overrides:
        apply_override(tree, override, origins)
    return tree, origins


def validate(
    schema: type[Schema],
    tree: Mapping[str, Any],
    origins: Mapping[KeyPath, str] | None = None,
    source: str = "config",
) -> Schema:
    """Validate a plain tree; raise :class:`ConfigError` with one line per problem."""
    try:
        return schema.model_validate(tree)
    except ValidationError as exc:
        raise located_error(schema, exc, origins, source) from None


def located_error(
    schema: type[BaseModel],
    exc: ValidationError,
    origins: Mapping[KeyPath, str] | None = None,
    source: str = "config",
) -> ConfigError:
    """One line per problem, each naming the file or override that set the key."""
    lines = [
        describe_error(schema, err, origins or {}, source) for err in _merge_union_members(exc)
    ]
    return ConfigError("\n".join(dict.fromkeys(lines)))


# pydantic's error types that only say the value had another member's type
_TYPE_MISMATCH = ("literal_error", "_type", "_parsing", "enum")


def _merge_union_members(exc: ValidationError) -> list[dict[str, Any]]:
    """One error per value: a union of plain types (``NonNegativeInt | Literal["epoch"]``) fails
    once per member, each under a tag (``constrained-int``, ``literal['epoch']``) the user never
    wrote. The member whose type the value had says what is wrong (``-1``: "greater than or
    equal to 0"); where no member took its type, the expected types say it all."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for err in exc.errors():
        loc = tuple(err["loc"])
        tagged = bool(loc) and isinstance(loc[-1], str) and _is_member_tag(loc[-1])
        groups.setdefault(loc[:-1] if tagged else loc, []).append(dict(err, loc=loc))
    merged = []
    for loc, errs in groups.items():
        if len(errs) == 1 or not all(_is_member_tag(str(e["loc"][-1])) for e in errs):
            merged.extend(errs)
            continue
        own = [e for e in errs if not any(t in e["type"] for t in _TYPE_MISMATCH)]
        if own:
            merged.append(
                dict(own[0], loc=loc, msg="; ".join(dict.fromkeys(e["msg"] for e in own)))
            )
        else:
            merged.append(dict(errs[0], loc=loc, type="union_mismatch", msg=""))
    return merged


def _is_member_tag(part: str) -> bool:
    """pydantic's names for the plain-type members of a union: ``int``, ``constrained-int``,
    ``literal['epoch']``, ``function-after[...]``: never a valid key of a synthlm section."""
    return bool(re.fullmatch(r"[a-z-]+(\[.*\])?", part)) and (
        "[" in part or "-" in part or part in _PLAIN_TYPES
    )


_PLAIN_TYPES = {"int", "float", "str", "bool", "none", "list", "dict", "tuple", "bytes"}


def describe_error(
    schema: type[BaseModel],
    err: Mapping[str, Any],
    origins: Mapping[KeyPath, str],
    default_source: str,
) -> str:
    loc = tuple(err["loc"])
    data_loc = _data_location(schema, loc)
    key = ".".join(str(p) for p in data_loc) or "(top level)"
    where = _origin(origins, data_loc) or default_source
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{where}: {key}: unknown key{_suggestion(schema, data_loc)}"
    if kind == "missing":
        return f"{where}: {key}: required key is missing"
    if kind == "invalid_option":  # worded already by synthlm.registry.validate_options
        return f"{where}: {key}: {err['msg']}"
    expected = _expected_type(schema, data_loc)
    got = err.get("input")
    message = err["msg"].removeprefix("Value error, ")
    # synthlm's own checks (field and model validators) run on a value of the right type: only
    # their message applies ("expected one of 'hf', 'neox'" before "neox is not for t5" misleads)
    own_check = kind == "value_error"
    if own_check:
        where = _involved_sources(origins, data_loc, message) or where
    detail = f"expected {expected}: {message}" if expected and not own_check else message
    detail = detail.removesuffix(": ")
    if not isinstance(got, (dict, list)) and f"got {got!r}" not in message:
        detail += f" (got {got!r})"
    return f"{where}: {key}: {detail}"


def _involved_sources(origins: Mapping[KeyPath, str], loc: KeyPath, message: str) -> str | None:
    """The files and overrides that set the keys a section's own check names.

    A check across keys (``epoch_batches: per_epoch`` needs ``packing: false``) fails on the
    whole section, whose origin is the file that began it; the value at fault may come from an
    override. So every key of the section that the message names, by its name or its dotted
    path, contributes its origin, in the order they were given."""
    named: list[str] = []
    for path, origin in origins.items():
        if len(path) <= len(loc) or path[: len(loc)] != loc:
            continue
        keys = {".".join(str(p) for p in path[len(loc) :]), ".".join(str(p) for p in path)}
        if path[len(loc)] == path[-1] or len(path) == len(loc) + 1:
            keys.add(str(path[len(loc)]))
        if any(re.search(rf"(?<![\w.]){re.escape(k)}(?![\w])", message) for k in keys):
            named.append(origin)
    named = list(dict.fromkeys(named))
    return " + ".join(named) if named else None


def _origin(origins: Mapping[KeyPath, str], loc: KeyPath) -> str | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in origins:
            return origins[loc[:end]]
    return None


def _data_location(schema: type[BaseModel], loc: KeyPath) -> KeyPath:
    """Drop the union-member tags pydantic puts in ``loc`` so it matches the user's keys."""
    out: list[str | int] = []
    annotation: Any = schema
    for part in loc:
        models = _models_in(annotation)
        # entering a union of sections, pydantic names the member it chose by its tag; a tag can
        # also be a field name of some member (domain "reverse", option "reverse"), so inside a
        # union of several sections the tag wins
        union = len(models) > 1 or not any(part in m.model_fields for m in models)
        if isinstance(part, str) and union and any(_tag_matches(m, part) for m in models):
            annotation = next(m for m in models if _tag_matches(m, part))
            continue
        out.append(part)
        annotation = _child_annotation(annotation, part)
    return tuple(out)


def _tag_matches(model: type[BaseModel], tag: str) -> bool:
    for field in model.model_fields.values():
        args = typing.get_args(field.annotation)
        if typing.get_origin(field.annotation) is typing.Literal and tag in args:
            return True
    return tag == model.__name__


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [a for arg in typing.get_args(annotation) for a in _unwrap(arg)]
    return [annotation]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    return [a for a in _unwrap(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]


def _child_annotation(annotation: Any, part: str | int) -> Any:
    for candidate in _unwrap(annotation):
        if (
            isinstance(candidate, type)
            and issubclass(candidate, BaseModel)
            and isinstance(part, str)
            and part in candidate.model_fields
        ):
            return candidate.model_fields[part].annotation
        origin = typing.get_origin(candidate)
        args = typing.get_args(candidate)
        if origin in (list, tuple, Sequence) and isinstance(part, int) and args:
            return args[0]
        if origin in (dict, Mapping) and len(args) == 2:
            return args[1]
    return None


def _parent_models(schema: type[BaseModel], loc: KeyPath) -> list[type[BaseModel]]:
    annotation: Any = schema
    for part in loc[:-1]:
        annotation = _child_annotation(annotation, part)
    return _models_in(annotation)


def _suggestion(schema: type[BaseModel], loc: KeyPath) -> str:
    if not loc:
        return ""
    names = sorted({name for m in _parent_models(schema, loc) for name in m.model_fields})
    prefix = ".".join(str(p) for p in loc[:-1])
    full = [f"{prefix}.{n}" if prefix else n for n in names]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{full[names.index(close[0])]}'?)"
    if names:
        return f" (allowed keys here: {', '.join(names)})"
    return ""


def _expected_type(schema: type[BaseModel], loc: KeyPath) -> str:
    annotation: Any = schema
    for part in loc:
        annotation = _child_annotation(annotation, part)
        if annotation is None:
            return ""
    return _type_name(annotation)


def _type_name(annotation: Any) -> str:
    members = _unwrap(annotation)
    if len(members) > 1 and all(isinstance(m, type) and issubclass(m, BaseModel) for m in members):
        return (
            "a mapping"  # a union of sections (e.g. 31 domain specs): naming them all helps no one
        )
    names = []
    for arg in _unwrap(annotation):
        if arg is type(None):
            names.append("null")
        elif typing.get_origin(arg) is typing.Literal:
            names.append("one of " + ", ".join(repr(a) for a in typing.get_args(arg)))
        elif isinstance(arg, type):
            names.append(arg.__name__)
        else:
            names.append(str(arg).replace("typing.", ""))
    return " or ".join(names)


# ---------------------------------------------------------------------------------------------
# Provenance


def to_plain(model: BaseModel) -> dict[str, Any]:
    """The resolved config as plain YAML-able data (paths as strings)."""
    return model.model_dump(mode="json")


def dump_yaml(model: BaseModel | Mapping[str, Any]) -> str:
    data = to_plain(model) if isinstance(model, BaseModel) else dict(model)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def save_yaml(model: BaseModel | Mapping[str, Any], path: str | Path) -> Path:
    """Write the resolved config atomically (temp file, then rename)."""
    from synthlm.fileio import atomic_write_text

    return atomic_write_text(path, dump_yaml(model))


def split_files_and_overrides(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """CLI helper: ``synthlm train a.yaml b.yaml optim.lr=1e-3`` -> files, overrides."""
    files = [a for a in args if "=" not in a]
    overrides = [a for a in args if "=" in a]
    return files, overrides

"""Registries: one lookup error for every extension point."""

from __future__ import annotations

import pytest

from synthlm.errors import ConfigError
from synthlm.registry import Registry


def test_lookup_suggests_the_closest_name_and_lists_all():
    things: Registry[int] = Registry("widget")
    things.register("cosine")(1)
    things.register("linear")(2)
    assert things.get("linear") == 2 and "cosine" in things and things.names() == ["cosine", "linear"]
    with pytest.raises(ConfigError, match=r"unknown widget 'cosin' \(did you mean 'cosine'\?\); known: cosine, linear"):
        things.get("cosin")
    with pytest.raises(ValueError, match="unknown widget 'x'"):
        things.check("x")


def test_a_name_cannot_be_taken_twice_by_different_things():
    things: Registry[int] = Registry("widget")
    things.register("a")(1)
    with pytest.raises(ValueError, match="registered twice"):
        things.register("a")(2)

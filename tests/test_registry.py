"""Registries: one lookup error for every extension point."""

from __future__ import annotations

import pytest

from synthlm.errors import ConfigError
from synthlm.registry import Registry


def test_lookup_suggests_the_closest_name_and_lists_all():
    things: Registry[int] = Registry("widget")
    things.register("cosine")(1)
    things.register("linear")(2)
    assert (
        things.get("linear") == 2 and "cosine" in things and things.names() == ["cosine", "linear"]
    )
    with pytest.raises(
        ConfigError,
        match=r"unknown widget 'cosin' \(did you mean 'cosine'\?\); known: cosine, linear",
    ):
        things.get("cosin")
    with pytest.raises(ValueError, match="unknown widget 'x'"):
        things.check("x")


def test_a_name_cannot_be_taken_twice_by_different_things():
    things: Registry[int] = Registry("widget")
    things.register("a")(1)
    with pytest.raises(ValueError, match="registered twice"):
        things.register("a")(2)


def test_typed_options_are_checked_per_entry_with_the_allowed_keys():
    from pydantic import BaseModel, ConfigDict, ValidationError

    from synthlm.registry import NoOptions, validate_options

    class Cosine(BaseModel):
        model_config = ConfigDict(extra="forbid")
        min_ratio: float = 0.0

    things: Registry[int] = Registry("widget")
    things.register("cosine", options=Cosine)(1)
    things.add("linear", 2)
    assert things.options_model("cosine") is Cosine and things.options_model("linear") is NoOptions
    assert validate_options(Cosine, {"min_ratio": "0.1"}, key="w").min_ratio == 0.1
    with pytest.raises(ValidationError) as caught:
        validate_options(Cosine, {"min_ratoi": 1, "x": 2}, key="sched.options", loc=("options",))
    errors = {e["loc"]: e["msg"] for e in caught.value.errors()}
    assert (
        errors[("options", "min_ratoi")] == "unknown key (did you mean 'sched.options.min_ratio'?)"
    )
    assert errors[("options", "x")] == "unknown key (allowed keys here: min_ratio)"
    del things["cosine"]
    assert "cosine" not in things
    things["step"] = 3  # monkeypatch.setitem works on a registry
    assert (
        things.find("step") == 3
        and things.find("cosine") is None
        and dict(things.items()) == {"linear": 2, "step": 3}
    )


def test_the_objective_options_of_the_chosen_objective_are_checked_with_their_file(tmp_path):
    import subprocess
    import sys

    from synthlm.train.config import check_objective, load_run_config

    path = tmp_path / "run.yaml"
    path.write_text(
        "run_dir: run\ndata: {sources: [{name: a, path: a}]}\ntrain: {max_steps: 1}\n"
        "objective: {name: span_corruption, noise_densty: 0.3}\n"
    )
    config = load_run_config([path])
    with pytest.raises(
        ConfigError,
        match=r"run\.yaml: objective\.noise_densty: unknown key \(did you mean "
        r"'objective\.noise_density'\?\)",
    ):
        check_objective(config)
    # loading a config stays light: the objectives (and torch) load only when checked
    code = (
        "import sys; from synthlm.train import load_run_config; "
        f"load_run_config([{str(path)!r}]); print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    with pytest.raises(
        ConfigError,
        match=r"override 'objective\.train_on=some': objective\.train_on: expected one of "
        r"'assistant', 'all'",
    ):
        check_objective(
            load_run_config([path], ["objective={name: sft}", "objective.train_on=some"])
        )
    with pytest.raises(
        ConfigError,
        match=r"override 'objective=\{name: clmm\}': objective\.name: unknown objective "
        r"'clmm' \(did you mean 'clm'\?\)",
    ):
        check_objective(load_run_config([path], ["objective={name: clmm}"]))
    config = load_run_config([path], ["objective={name: depth, max_sentences: 4}"])
    check_objective(config)
    assert config.objective.options() == {"max_sentences": 4}


def test_lazy_entries_are_known_at_once_and_imported_on_first_use():
    """Objectives are named when ``synthlm.objectives`` is imported and their modules imported on
    first use: listings and did-you-mean see every name, a clm run imports no other objective."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from synthlm.objectives import OBJECTIVES\n"
        "mods = lambda: {m.rsplit('.', 1)[1] for m in sys.modules if m.startswith("
        "'synthlm.objectives.') and m.rsplit('.', 1)[1] in OBJECTIVES}\n"
        "assert mods() == set(), mods()\n"
        "assert OBJECTIVES.names() == ['clm', 'depth', 'sft', 'span_corruption', 'text_to_text']\n"
        "assert 'dept' not in OBJECTIVES and 'depth' in OBJECTIVES and mods() == set()\n"
        "assert \"did you mean 'depth'\" in OBJECTIVES.unknown('dept')\n"
        "assert OBJECTIVES['clm'].name == 'clm' and mods() == {'clm'}\n"
        "assert 'noise_density' in OBJECTIVES.options_model('span_corruption').model_fields\n"
        "assert mods() == {'clm', 'span_corruption'}\n"
        "assert {n for n, _ in OBJECTIVES.items()} == set(OBJECTIVES.names())\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_lazy_entry_whose_module_does_not_register_it_is_a_bug_said_so():
    things: Registry[int] = Registry("widget")
    things.lazy("json", "json")  # json registers no widget
    assert "json" in things and things.names() == ["json"]
    with pytest.raises(RuntimeError, match="json was declared to register widget 'json'"):
        things.get("json")
    del things["json"]
    assert "json" not in things and len(things) == 0

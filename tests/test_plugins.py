"""Plugins: an installed distribution's ``synthlm.plugins`` entry points extend synthlm.

Each test installs a real distribution (``*.dist-info/entry_points.txt``) in a temp folder on
``PYTHONPATH`` and runs the real command in a subprocess: ``importlib.metadata`` finds it as it
finds any installed package, and each subprocess loads plugins afresh.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from plugin_helpers import install_plugin

DOMAIN = """
import numpy as np

from synthlm.synth.domains.base import InputTask
from synthlm.synth.registry import register_domain


@register_domain("plugin_echo", family="plugins", description="The input, echoed (a plugin).")
class PluginEcho(InputTask):
    def transform(self, rng, x):
        return x

    def answer_of(self, x):
        return x
"""

MARKED_OBJECTIVE = """
import os
from pathlib import Path

from synthlm.objectives import Objective, register_objective

with Path(os.environ["PLUGIN_MARK"]).open("a") as mark:
    mark.write("imported\\n")


@register_objective("plugin_probe")
class Probe(Objective):
    pass
"""


def synthlm(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "synthlm", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )


def test_synth_list_and_preview_show_an_installed_plugin_domain(tmp_path: Path):
    env = install_plugin(
        tmp_path / "site", "echo-tasks", {"echo_tasks": DOMAIN}, {"echo": "echo_tasks"}
    )
    listing = synthlm("synth", "list", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "\nplugin_echo  [plugins, task]  The input, echoed (a plugin)." in listing.stdout
    spec = tmp_path / "spec.yaml"
    spec.write_text("domains:\n  - {type: plugin_echo, vocab: {num_vocab: 12}}\n")
    preview = synthlm("synth", "preview", str(spec), "-n", "3", env=env)
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.count("verify ok") == 3 and "plugin_echo" in preview.stdout


def test_a_plugin_that_fails_to_import_is_named_never_skipped(tmp_path: Path):
    env = install_plugin(
        tmp_path / "site",
        "broken-tasks",
        {"broken_tasks": "import not_a_module_anywhere\n"},
        {"broken": "broken_tasks"},
    )
    result = synthlm("synth", "list", env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        "error: plugin 'broken' (entry point synthlm.plugins: broken = broken_tasks, from "
        "broken-tasks 0.1) failed to import: ModuleNotFoundError: No module named "
        "'not_a_module_anywhere'"
    ) in result.stderr
    again = python(  # every later lookup says it again instead of going on without it
        "from synthlm.registry import PluginError\n"
        "from synthlm.objectives import OBJECTIVES\n"
        "for name in ('nope', 'nope'):\n"
        "    try:\n"
        "        name in OBJECTIVES\n"
        "    except PluginError as exc:\n"
        "        print('PluginError', exc)\n",
        env,
    )
    assert again.stdout.count("PluginError plugin 'broken'") == 2, again.stderr


def test_plugins_load_on_the_first_missing_name_not_at_start_up(tmp_path: Path):
    mark = tmp_path / "imported.txt"
    env = install_plugin(
        tmp_path / "site", "probe", {"probe_plugin": MARKED_OBJECTIVE}, {"probe": "probe_plugin"}
    )
    env["PLUGIN_MARK"] = str(mark)
    assert synthlm("--version", env=env).returncode == 0
    assert synthlm("train", "--help", env=env).returncode == 0
    assert not mark.exists()  # start-up and built-in names never scan the entry points
    result = python(
        "from pathlib import Path\n"
        "from synthlm.objectives import OBJECTIVES\n"
        f"mark = Path({str(mark)!r})\n"
        "OBJECTIVES.get('clm')\n"
        "print('after a built-in name:', mark.exists())\n"
        "print('plugin_probe' in OBJECTIVES, 'plugin_probe' in OBJECTIVES.names())\n",
        env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["after a built-in name: False", "True True"]
    assert mark.read_text() == "imported\n"  # once, though looked up twice

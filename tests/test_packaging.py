"""Packaging: pyproject and environment.yml list the same packages; the console script and modules exist."""

import importlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def normalise(spec: str) -> tuple[str, str]:
    name, version = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec).groups()
    return name.lower().replace("_", "-"), version.replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {normalise(s) for s in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert {normalise(s) for s in pip} == wanted
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.split("=")[1] in ("3.11", "3.12")


def test_torch_range_admits_the_offline_cpu_build():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_spec = dict(normalise(s) for s in project["dependencies"])["torch"]
    from packaging.specifiers import SpecifierSet

    assert "2.13.0" in SpecifierSet(torch_spec)


@pytest.mark.parametrize("module", ["backbones", "cli", "data", "evaluation", "losses", "model",
                                    "pipeline", "reporting", "runtime", "sampling", "training"])
def test_every_module_imports(module):
    importlib.import_module(f"piccolo_lib.{module}")


def test_console_script_runs():
    exe = shutil.which("piccolo", path=str(Path(sys.executable).parent))
    assert exe, "the `piccolo` console script is not installed next to this Python"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    for cmd in ("quickstart", "train", "eval", "data", "backbone", "env"):
        assert cmd in out


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and re.search(r"^make test$", ci, re.M)

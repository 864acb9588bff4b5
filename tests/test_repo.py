"""Repository invariants: CI runs the README's test command; nothing called `kernels` is installed."""
import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command_verbatim():
    commands = [c for c in readme_commands() if "pytest" in c]
    assert commands, "README gives no test command"
    test_command = commands[0]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in [line.strip() for line in ci]


def test_readme_setup_installs_with_the_torch_pin():
    pins = (ROOT / ".ci" / "constraints.txt").read_text()
    assert "torch==2.13.0" in pins
    setup = [c for c in readme_commands() if "pip install" in c]
    assert setup and all("-c .ci/constraints.txt" in c for c in setup)


def test_kernels_are_installed_inside_fastgeo_only():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert conf["package-dir"]["fastgeo.kernels"] == "kernels"
    assert all(p == "fastgeo" or p.startswith("fastgeo.") for p in conf["packages"])
    # every subpackage on disk is listed, so none is left out of a wheel
    on_disk = {"fastgeo." + ".".join(p.relative_to(ROOT / "fastgeo").parent.parts)
               for p in (ROOT / "fastgeo").rglob("__init__.py") if p.parent != ROOT / "fastgeo"}
    assert on_disk <= set(conf["packages"])

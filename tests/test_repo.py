"""Repository invariants: the README's two set-up commands, CI, and what gets installed."""
import os
import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def setup_commands():
    """The commands of the README's "Set-up" section (its first bash block)."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Set-up\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert section, "README has no '## Set-up' section"
    block = re.search(r"```bash\n(.*?)```", section.group(1), flags=re.S)
    assert block, "the Set-up section has no bash block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_setup_is_two_commands_main_job_and_tests():
    commands = setup_commands()
    assert len(commands) == 2
    main_job, tests = commands
    assert main_job.endswith("fastgeo demo")
    assert "pytest" in tests
    for command in commands:  # torch is pinned to the local CPU build (no CUDA downloads)
        assert "-c .ci/constraints.txt" in command
    assert "torch==2.13.0" in (ROOT / ".ci" / "constraints.txt").read_text()


def test_ci_runs_the_readme_test_command_verbatim():
    tests = setup_commands()[1]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert tests in ci


def test_package_requirements_are_ranges_users_can_satisfy():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = [d for d in deps if d.startswith("torch")]
    assert torch and "==" not in torch[0]


def test_kernels_are_installed_inside_fastgeo_only():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    # fastgeo.kernels is the top-level kernels/ folder, through a relative symbolic link
    link = ROOT / "fastgeo" / "kernels"
    assert link.is_symlink() and os.readlink(link) == os.path.join("..", "kernels")
    assert "package-dir" not in conf and "fastgeo.kernels" in conf["packages"]
    assert all(p == "fastgeo" or p.startswith("fastgeo.") for p in conf["packages"])
    # every subpackage on disk is listed, so none is left out of a wheel
    on_disk = {"fastgeo." + ".".join(p.relative_to(ROOT / "fastgeo").parent.parts)
               for p in (ROOT / "fastgeo").rglob("__init__.py") if p.parent != ROOT / "fastgeo"}
    assert on_disk <= set(conf["packages"])

"""The wheel and sdist that ``python -m build`` makes install and work: a fresh virtual
environment gets the wheel alone (``--no-deps``), torch and the other dependencies come from
this environment's site-packages through a ``.pth`` file (installing a 6 GB torch again would
prove nothing about our package), and a marked test runs through the installed plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

MARKED = """
import pytest
import torch

@pytest.mark.torchscript(inputs=torch.randn(2, 4))
def test_linear():
    return torch.nn.Linear(4, 3).eval()
"""


def _run(*command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and venv layout are POSIX here")
def test_built_wheel_installs_into_a_fresh_venv_and_checks_a_model(tmp_path):
    pytest.importorskip("build")
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT))
    (wheel,) = dist.glob("pytest_torchscript-*.whl")
    (sdist,) = dist.glob("pytest_torchscript-*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "pytest_torchscript/py.typed" in names and "pytest_torchscript/plugin.py" in names
    assert any(name.endswith("entry_points.txt") for name in names)
    # Every module and the runner's source ship (a package list that forgets a subpackage
    # builds a wheel that cannot import): the tree itself says what must be there.
    package = ROOT / "pytest_torchscript"
    shipped = [
        "pytest_torchscript/" + path.relative_to(package).as_posix()
        for path in package.rglob("*")
        if path.suffix in (".py", ".cpp") and "__pycache__" not in path.parts
    ]
    assert "pytest_torchscript/deploy/cpp/runner.cpp" in shipped
    assert not [name for name in shipped if name not in names]
    with tarfile.open(sdist) as archive:
        assert any(
            name.endswith("pytest_torchscript/reporting/merge.py") for name in archive.getnames()
        )

    # Everything this environment has, except our own package: torch, pytest, their deps.
    deps = tmp_path / "deps"
    deps.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if entry.name.startswith(("pytest_torchscript", "__editable__", "_pytest_torchscript")):
            continue
        if entry.suffix == ".pth":
            continue
        (deps / entry.name).symlink_to(entry)
    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=True)
    python = fresh / "bin" / "python"
    _run(str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel))
    fresh_site = Path(
        _run(
            str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        ).stdout.strip()
    )
    (fresh_site / "deps.pth").write_text(str(deps) + "\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_model.py").write_text(MARKED)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH"))}
    result = _run(
        str(python),
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--benchmark-disable",
        "--ts-cpp=off",
        cwd=project,
        env=env,
    )
    assert "1 check(s): 1 passed, 0 failed" in result.stdout, result.stdout
    where = _run(
        str(python),
        "-c",
        "import pytest_torchscript; print(pytest_torchscript.__file__)",
        cwd=project,
    )
    assert str(fresh_site) in where.stdout  # the installed wheel, not this checkout
    _run(str(fresh / "bin" / "pytest-torchscript"), "--help")

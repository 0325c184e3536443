"""The front door and the docs: the README stays a page or two and every link in it resolves;
the configuration reference and the benchmark page are what the code and the results render
(a flag, ini key or option cannot go undocumented); every --ts-* flag pytest shows is in it."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

from pytest_torchscript.config import reference
from pytest_torchscript.config.ini_keys import INI_HELP
from pytest_torchscript.config.options import OPTION_SPECS
from pytest_torchscript.config.settings import RUN_SETTINGS

ROOT = Path(__file__).resolve().parent.parent
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_reference_names_every_flag_ini_key_and_option():
    page = (ROOT / "docs" / "configuration.md").read_text()
    names = [f"`{s.option}`" for s in RUN_SETTINGS if s.flag]
    names += [f"`{s.key}`" for s in RUN_SETTINGS if s.ini]
    names += [f"`{name}`" for name in OPTION_SPECS]
    names += [f"`{key}`" for key in INI_HELP]
    missing = [name for name in names if name not in page]
    assert not missing, f"missing from docs/configuration.md: {missing}"


def test_the_committed_generated_pages_are_current():
    assert (ROOT / "docs" / "configuration.md").read_text() == reference.render(), (
        "docs/configuration.md is stale: run make docs"
    )
    renderer = runpy.run_path(str(ROOT / "scripts" / "render_benchmarks.py"))
    assert (ROOT / "docs" / "benchmarks.md").read_text() == renderer["render"](), (
        "docs/benchmarks.md is stale: run make docs"
    )


def test_every_ts_flag_pytest_shows_is_in_the_reference():
    shown = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout  # fmt: skip
    flags = set(re.findall(r"(--ts-[a-z-]+)", shown))
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert flags and not [flag for flag in flags if f"`{flag}`" not in page]


def test_the_readme_is_a_front_door_whose_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    targets = [t for t in _LINK.findall(text) if "://" not in t]
    assert targets, "the README links to the docs"
    broken = [target for target in targets if not (ROOT / target).exists()]
    assert not broken, f"README links that do not resolve: {broken}"

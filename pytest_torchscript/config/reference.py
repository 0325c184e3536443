"""The configuration reference (docs/configuration.md), generated from the one definition of
each setting: ``settings.RUN_SETTINGS`` (every ``--ts-*`` flag and ``ts_*`` ini key),
``options.OPTION_SPECS`` (every marker and ``check()`` option) and ``ini_keys.INI_HELP`` (their
ini keys). A new flag or option appears here by being defined, and ``tests/test_docs.py``
fails if the committed page is not what this renders.

    python -m pytest_torchscript.config.reference docs/configuration.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..modes import ALL_MODES, MODES
from .ini_keys import INI_HELP
from .options import MARKER_ONLY, OPTION_SPECS
from .settings import RUN_SETTINGS

INTRO = """# Configuration reference

Generated from the plugin's own tables by `python -m pytest_torchscript.config.reference` (`make
docs` runs it); [How options combine](options.md) says how the layers override each other:
`check()` keywords over the marker, over a class or module mark, over ini, over the defaults.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    lines = [INTRO, "## Per-check options", ""]
    lines.append(
        "Given to `@pytest.mark.torchscript(...)`, to `torchscript.check(model, inputs, ...)` "
        "(all but those marked *marker only*) and, where an ini key is listed, in the ini file."
    )
    lines += ["", "| option | accepts | ini key |", "|---|---|---|"]
    for name, spec in OPTION_SPECS.items():
        key = f"`ts_{name}`" if spec.from_ini_text is not None else "-"
        where = " (*marker only*)" if name in MARKER_ONLY else ""
        lines.append(f"| `{name}`{where} | {_cell(spec.accepted)} | {key} |")
    lines += ["", "## Run-wide settings", ""]
    lines.append(
        "One value for the whole run. The command line wins over the ini file; an ini path is "
        "relative to the ini file."
    )
    lines += ["", "| flag | ini key | value | what it does |", "|---|---|---|---|"]
    for setting in RUN_SETTINGS:
        flag = f"`{setting.option}`" if setting.flag else "-"
        key = f"`{setting.key}`" if setting.ini else "-"
        value = (
            "switch"
            if setting.metavar is None
            else "`" + "\\|".join(setting.choices) + "`"
            if setting.choices
            else f"`{setting.metavar}`"
        )
        lines.append(f"| {flag} | {key} | {value} | {_cell(setting.help)} |")
    lines += ["", "## Ini keys of the per-check options", "", "| ini key | what it sets |"]
    lines.append("|---|---|")
    for key, text in INI_HELP.items():
        lines.append(f"| `{key}` | {_cell(text)} |")
    lines += [
        "",
        "## Modes",
        "",
        f"`mode=` takes {', '.join(f'`{m!r}`' for m in MODES)}, a list of them, or `'all'`: "
        f"the modes `--ts-modes` lists, by default {', '.join(f'`{m}`' for m in ALL_MODES)} "
        f"(the others are checked where they are named; [Modes](modes.md) says why).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    if argv:
        Path(argv[0]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

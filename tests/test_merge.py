"""Merging shard reports and baselines: through the command, as a CI step runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_torchscript.reporting import merge

SUITE = """
import pytest
import torch
from models import Affine, Branchy, Masked

SIGNS = [torch.ones(2, 4), -torch.ones(2, 4)]

@pytest.mark.torchscript(mode=["trace", "script"], inputs=SIGNS, roundtrip=False)
def test_branchy():
    return Branchy()

@pytest.mark.torchscript(mode=["trace", "script"], inputs=torch.randn(2, 4), roundtrip=False)
def test_affine():
    return Affine().eval()

@pytest.mark.torchscript(inputs={"x": torch.randn(2, 3, 8), "mask": torch.ones(2, 3)},
                         roundtrip=False)
def test_masked():
    return Masked().eval()
"""


def _run_merge(pytester, *args):
    return subprocess.run(
        [sys.executable, "-m", "pytest_torchscript", *args],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )


def _rows(document):
    return sorted(
        (c["test_id"], c["mode"], c["device"], c["verdict"], c["failed_stage"])
        for c in document["checks"]
    )


def _matrix(text):
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("migration matrix"))
    return lines[start : start + 5]


def test_three_shards_merge_into_the_serial_run(suite, pytester):
    serial = suite(SUITE, "--ts-report=serial.json")
    serial.assert_outcomes(passed=4, failed=1)
    for index, name in enumerate(["branchy", "affine", "masked"]):
        suite(SUITE, f"--ts-report=shard{index}.json", "-k", name)
    merged = _run_merge(
        pytester,
        "merge",
        "shard0.json",
        "shard1.json",
        "shard2.json",
        "--json",
        "merged.json",
        "--html",
        "merged.html",
    )
    assert merged.returncode == 1, merged.stderr  # one check failed, as in the serial run
    document = json.loads((pytester.path / "merged.json").read_text())
    serial_document = json.loads((pytester.path / "serial.json").read_text())
    assert _rows(document) == _rows(serial_document)
    assert document["summary"] == serial_document["summary"]
    assert {check["shard"] for check in document["checks"]} == {
        "shard0.json",
        "shard1.json",
        "shard2.json",
    }
    assert all(check["torch"] and check["machine"]["host"] for check in document["checks"])
    assert _matrix(merged.stdout) == _matrix(serial.stdout.str())
    assert "<table" in (pytester.path / "merged.html").read_text()


def test_a_retried_shard_is_a_listed_conflict_and_the_newest_result_wins(suite, pytester):
    suite(SUITE, "--ts-report=first.json", "-k", "affine")
    first = json.loads((pytester.path / "first.json").read_text())
    retry = json.loads(json.dumps(first))
    retry["created"] = "2999-01-01T00:00:00+00:00"
    retry["checks"][0]["verdict"] = "failed"
    retry["checks"][0]["verdict_text"] = "failed (parity)"
    retry["checks"][0]["failed_stage"] = "parity"
    (pytester.path / "retry.json").write_text(json.dumps(retry))
    result = _run_merge(pytester, "merge", "retry.json", "first.json", "--json", "out.json")
    out = json.loads((pytester.path / "out.json").read_text())
    kept = [
        c
        for c in out["checks"]
        if c["test_id"] == retry["checks"][0]["test_id"] and c["mode"] == retry["checks"][0]["mode"]
    ]
    assert [c["verdict"] for c in kept] == ["failed"] and kept[0]["shard"] == "retry.json"
    assert "conflict: test_user.py::test_affine[trace] (trace, cpu): 2 results" in result.stdout
    assert len(out["checks"]) == len(first["checks"])


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"format": "pytest-torchscript-report", "version": 1, "checks": [', "not complete JSON"),
        ('{"format": "something else"}', "not a pytest-torchscript report"),
        (
            '{"format": "pytest-torchscript-report", "version": 9, "checks": []}',
            "report schema version 9",
        ),
    ],
    ids=["truncated", "foreign", "other-version"],
)
def test_a_bad_shard_report_is_named_not_a_traceback(pytester, content, message):
    (pytester.path / "good.json").write_text(
        '{"format": "pytest-torchscript-report", "version": 1, "checks": []}'
    )
    (pytester.path / "bad.json").write_text(content)
    result = _run_merge(pytester, "merge", "good.json", "bad.json")
    assert result.returncode == 2
    assert result.stderr.startswith(f"pytest-torchscript: error: bad.json: {message}")
    assert "Traceback" not in result.stderr


def _baseline(path, entries):
    path.write_text(
        json.dumps({"format": "pytest-torchscript-baseline", "version": 2, "entries": entries})
    )


def _entry(median):
    return {
        "ratio": {"median": median, "low": median, "high": median},
        "eager_median": 1e-3,
        "converted_median": 1e-3 * median,
        "fingerprint": {"cpu": "x"},
    }


def test_baselines_merge_and_a_disagreement_needs_prefer(pytester):
    _baseline(
        pytester.path / "a.json", {"t1 | trace | cpu": _entry(1.0), "t2 | trace | cpu": _entry(2.0)}
    )
    _baseline(
        pytester.path / "b.json", {"t3 | trace | cpu": _entry(3.0), "t2 | trace | cpu": _entry(2.0)}
    )
    result = _run_merge(pytester, "merge-baselines", "a.json", "b.json", "--out", "all.json")
    assert result.returncode == 0, result.stderr
    entries = json.loads((pytester.path / "all.json").read_text())["entries"]
    assert sorted(entries) == ["t1 | trace | cpu", "t2 | trace | cpu", "t3 | trace | cpu"]
    _baseline(pytester.path / "c.json", {"t1 | trace | cpu": _entry(1.5)})
    clash = _run_merge(pytester, "merge-baselines", "a.json", "c.json", "--out", "x.json")
    assert clash.returncode == 2
    assert (
        "a.json and c.json disagree on the entry 't1 | trace | cpu'; pass --prefer FILE"
        in clash.stderr
    )
    assert not (pytester.path / "x.json").exists()
    chosen = _run_merge(
        pytester, "merge-baselines", "a.json", "c.json", "--out", "x.json", "--prefer", "c.json"
    )
    assert chosen.returncode == 0, chosen.stderr
    entries = json.loads((pytester.path / "x.json").read_text())["entries"]
    assert entries["t1 | trace | cpu"]["ratio"]["median"] == 1.5


def test_merge_logic_in_process_keeps_order_and_counts(tmp_path):
    """Fast, torch-free: synthetic shard reports through ``merge_reports``."""

    def check(test, verdict):
        return {
            "test_id": test,
            "mode": "trace",
            "device": "cpu",
            "verdict": verdict,
            "verdict_text": verdict,
            "failed_stage": None,
            "model": "M",
            "failure": None,
        }

    for name, tests in (("s1.json", ["a", "b"]), ("s2.json", ["c"])):
        (tmp_path / name).write_text(
            json.dumps(
                {
                    "format": "pytest-torchscript-report",
                    "version": 1,
                    "created": "2026-01-01",
                    "exit_status": 0,
                    "threads": 1,
                    "checks": [check(test, "passed") for test in tests],
                }
            )
        )
    merged = merge.merge_reports([tmp_path / "s1.json", tmp_path / "s2.json"])
    assert [c["test_id"] for c in merged.document["checks"]] == ["a", "b", "c"]
    assert merged.document["summary"]["passed"] == 3 and merged.conflicts == []

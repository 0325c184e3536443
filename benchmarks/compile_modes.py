"""mode="compile" on real models: what the check finds and what it costs against the same
check written by hand.

Eight torchvision classifiers (weights=None, 64x64) and two transformers models (small
configs, use_cache=False), each with two input sets (batch 1 and 2, so the default dynamic=None
recompiles once, as it would in serving):
- plugin: ``@pytest.mark.torchscript(mode="compile", inputs=[...])`` with the default options
  (Inductor, graph breaks by explain, recompiles, the cache round trip in this process and in
  a fresh process with an empty Inductor cache), timing off;
- by hand: ``torch.compile(model)``, each input set through it, ``torch.testing.assert_close``
  against eager.
Each is a pytest session of its own process with an empty Inductor cache of its own, run
model by model in alternating order (plugin first for even models, by hand first for odd), so
neither profits from the other's compiled kernels and the machine's drift hits both. Recorded
per model: verdict, graph breaks, recompiles, cold and warm compile seconds, the largest
absolute and relative error against eager (what the mode's tolerances must allow), and both
sessions' wall time. Writes benchmarks/results/compile_modes.json.

Run: .venv/bin/python benchmarks/compile_modes.py [--models resnet18,bert]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import write

VISION = [
    "resnet18", "mobilenet_v3_small", "squeezenet1_0", "shufflenet_v2_x0_5",
    "regnet_y_400mf", "mnasnet0_5", "efficientnet_b0", "densenet121",
]  # fmt: skip
TEXT = ["bert", "gpt2"]

COMMON = """
import pytest
import torch

NAME = {name!r}

def build():
    torch.manual_seed(0)
    if NAME == "bert":
        import transformers
        config = transformers.BertConfig(hidden_size=64, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=128, vocab_size=1000)
        return transformers.BertModel(config).eval()
    if NAME == "gpt2":
        import transformers
        config = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=2, vocab_size=1000,
            use_cache=False)
        return transformers.GPT2LMHeadModel(config).eval()
    import torchvision
    return getattr(torchvision.models, NAME)(weights=None).eval()

def inputs():
    generator = torch.Generator().manual_seed(0)
    if NAME in ("bert", "gpt2"):
        return [{{"input_ids": torch.randint(0, 1000, (batch, 16), generator=generator)}}
                for batch in (1, 2)]
    return [torch.randn(batch, 3, 64, 64, generator=generator) for batch in (1, 2)]
"""

PLUGIN = COMMON + """
@pytest.mark.torchscript(mode="compile", inputs=inputs)
def test_model():
    return build()
"""

BY_HAND = COMMON + """
def test_model():
    model = build()
    compiled = torch.compile(model)
    with torch.no_grad():
        for input_set in inputs():
            expected = model(**input_set) if isinstance(input_set, dict) else model(input_set)
            actual = (compiled(**input_set) if isinstance(input_set, dict)
                      else compiled(input_set))
            torch.testing.assert_close(actual, expected)
"""


def session(source: str, folder: Path, report: Path | None) -> tuple[float, str]:
    """One pytest session of ``source`` in its own process and Inductor cache: wall seconds."""
    test = folder / "test_model.py"
    test.write_text(source)
    cache = tempfile.mkdtemp(prefix="inductor-", dir=folder)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--benchmark-disable", str(test)]  # fmt: skip
    if report is not None:
        command.append(f"--ts-report={report}")
    env = {**__import__("os").environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)
    return time.perf_counter() - started, done.stdout[-3000:] + done.stderr[-2000:]


def _call(module, input_set):
    return module(**input_set) if isinstance(input_set, dict) else module(input_set)


def errors(name: str) -> dict:
    """Eager against Inductor on both input sets, in this process: max abs and max relative
    error (relative to the largest eager output, where tolerances bite)."""
    import torch

    namespace: dict = {}
    exec(COMMON.format(name=name), namespace)
    model = namespace["build"]()
    compiled = torch.compile(model)
    worst = {"max_abs": 0.0, "max_abs_over_scale": 0.0, "needed_rtol_at_atol_1e-5": 0.0}
    with torch.no_grad():
        for input_set in namespace["inputs"]():
            expected, actual = _call(model, input_set), _call(compiled, input_set)
            flat_e = [t for t in torch.utils._pytree.tree_leaves(expected)
                      if isinstance(t, torch.Tensor) and t.is_floating_point()]  # fmt: skip
            flat_a = [t for t in torch.utils._pytree.tree_leaves(actual)
                      if isinstance(t, torch.Tensor) and t.is_floating_point()]  # fmt: skip
            for e, a in zip(flat_e, flat_a):
                diff = (a - e).abs()
                worst["max_abs"] = max(worst["max_abs"], float(diff.max()))
                scale = float(e.abs().max()) or 1.0
                worst["max_abs_over_scale"] = max(worst["max_abs_over_scale"],
                                                  float(diff.max()) / scale)  # fmt: skip
                needed = ((diff - 1e-5).clamp_min(0) / e.abs().clamp_min(1e-12)).max()
                worst["needed_rtol_at_atol_1e-5"] = max(
                    worst["needed_rtol_at_atol_1e-5"], float(needed))
    torch._dynamo.reset()
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(VISION + TEXT))
    args = parser.parse_args()
    rows = []
    for index, name in enumerate(args.models.split(",")):
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            report = folder / "report.json"
            order = ["plugin", "hand"] if index % 2 == 0 else ["hand", "plugin"]
            seconds, output = {}, {}
            for kind in order:
                source = (PLUGIN if kind == "plugin" else BY_HAND).format(name=name)
                sub = folder / kind
                sub.mkdir()
                seconds[kind], output[kind] = session(
                    source, sub, report if kind == "plugin" else None
                )
            check = json.loads(report.read_text())["checks"][0] if report.exists() else {}
        found = check.get("compile") or {}
        row = {
            "model": name,
            "verdict": check.get("verdict_text", "no report: " + output["plugin"][-300:]),
            "graphs": found.get("graphs"),
            "graph_breaks": [f"{b['location']} {b['kind']}" for b in found.get("graph_breaks", [])],
            "recompiles": [r["words"] for r in found.get("recompiles", [])],
            "cold_compile_s": (found.get("compile_seconds") or {}).get("0"),
            "warm_compile_s": (found.get("warm_seconds") or {}).get("0"),
            "cache": found.get("cache_kinds"),
            "max_abs": check.get("max_abs"),
            "plugin_s": seconds["plugin"],
            "by_hand_s": seconds["hand"],
            "ratio": seconds["plugin"] / seconds["hand"],
            "hand_passed": " passed" in output["hand"] and "failed" not in output["hand"],
            **errors(name),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    median = statistics.median(row["ratio"] for row in rows)
    path = write(
        "compile_modes",
        f"mode='compile' on eight torchvision and two transformers models; the plugin's check "
        f"against a hand-written compile test: median {median:.2f}x",
        rows,
        median_ratio=median,
    )
    print(f"median plugin / by-hand: {median:.2f}; written to {path}")


if __name__ == "__main__":
    main()

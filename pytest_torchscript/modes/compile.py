"""mode="compile": torch.compile (TorchDynamo and a backend, Inductor by default), checked the way
a trace is: parity with eager on every input set, and the compiler's own hazards named at the
user's line: every graph break (where the model leaves the graph and runs in Python, and why)
and every recompile (which input set failed which guard).

A compiled model has no artifact of its own; what a deployment ships is its compile cache
(``torch.compiler.save_cache_artifacts``), loaded before compiling so the first request does
not pay the cold compile. The round trip checks exactly that: the cache saved, loaded back here
after Dynamo forgets what it compiled, and loaded in a fresh process with an empty Inductor
cache, which compiles the model again from it and runs every input set (parity again, and the
warm compile time against the cold one). Unlike the other modes' fresh process, this one imports
the user's code: torch.compile deploys the Python model itself.

Graph breaks come from ``torch._dynamo.explain`` on the example (it runs before the real compile:
it resets Dynamo, which would otherwise discard the compiled code); recompiles from Dynamo's
compilation metrics, read call by call over the input sets.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..check.jit_warnings import RecordedWarning, import_torch, is_library_file, recording_warnings
from ..perf.graph_diff import fx_ops
from ..text import display_path, first_lines, short_repr, strip_ansi
from .base import Backend, Conversion, ConversionFailed, Target, failure_header
from .dynamo import CompileFindings, GraphBreak, Recompile, break_hint, break_kind, graph_breaks
from .dynamo import recompile_in_words as _in_words

_WORKER_SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "compile_worker.py"
FRESH_TIMEOUT_S = 600.0
# Inductor fuses and reorders float arithmetic (reductions above all), so float outputs differ
# from eager by rounding that grows with depth. benchmarks/compile_modes.py on eight
# torchvision and two transformers models: at most 2.1e-6 absolute and 1.6e-6 of the output's
# scale (efficientnet_b0), within float32's defaults on every one; rtol 1e-5 leaves about 6x of
# that for deeper models at full resolution, which accumulate more (docs/compile.md).
TOLERANCES = {"rtol": 1e-5, "atol": 1e-5}
_COMPILERS = ("g++", "c++", "clang++")
_FILE_LINE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


_COMPILE_KEYWORDS = ("backend", "mode", "dynamic", "fullgraph", "options", "disable")
_COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_options_parser(keywords: Any) -> Any:
    """The ``compile_options`` parser of options.py: ``keywords`` (its check of a dict of
    keyword arguments), then torch.compile's own, before any model exists: a typo
    (``fullgrpah``) or a mode torch does not have would otherwise be a compile error per test."""
    return lambda value: _compile_options(keywords(value))


def _compile_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(_COMPILE_KEYWORDS))
    if unknown:
        raise ValueError(
            f"{unknown[0]!r} is not a torch.compile keyword (it takes "
            f"{', '.join(_COMPILE_KEYWORDS)})"
        )
    backend = options.get("backend", "inductor")
    if not (isinstance(backend, str) and backend) and not callable(backend):
        raise ValueError(f"backend={short_repr(backend)} is not a backend name or a callable")
    mode = options.get("mode")
    if mode is not None and mode not in _COMPILE_MODES:
        raise ValueError(f"mode={short_repr(mode)} is not one of {', '.join(_COMPILE_MODES)}")
    if mode is not None and options.get("options"):
        raise ValueError("torch.compile takes mode= or options=, not both")
    for flag in ("fullgraph", "disable"):
        if flag in options and not isinstance(options[flag], bool):
            raise ValueError(f"{flag}={short_repr(options[flag])} is not True or False")
    if options.get("dynamic") not in (None, True, False):
        raise ValueError(f"dynamic={short_repr(options['dynamic'])} is not True, False or None")
    if "options" in options and not isinstance(options["options"], Mapping):
        raise ValueError(f"options={short_repr(options['options'])} is not a dict")
    return options


def describe_options(options: Mapping[str, Any]) -> str:
    shown = {"backend": "inductor", **options}
    return ", ".join(
        f"{key}={value!r}" if isinstance(value, (str, bool, type(None), int, float, dict))
        else f"{key}={getattr(value, '__name__', type(value).__name__)}"
        for key, value in shown.items()
    )  # fmt: skip


def _metrics() -> list[Any]:
    """Dynamo's record of every frame it compiled in this process (most recent last)."""
    try:
        from torch._dynamo.utils import get_compilation_metrics
    except ImportError:
        return []
    return list(get_compilation_metrics())


def _metric_id(metric: Any) -> tuple:
    return (
        getattr(metric, "compile_id", None),
        getattr(metric, "start_time_us", None) or getattr(metric, "start_time", None),
        getattr(metric, "frame_key", None),
    )


class CompiledModule:
    """The compiled model as the check calls it. While ``observing`` (parity), each call notes
    how long it took and which frames Dynamo compiled during it, so a recompile is tied to the
    input set that caused it; afterwards (timing) it only calls through."""

    def __init__(self, compiled: Any, model: Any, options: dict[str, Any]) -> None:
        self.compiled = compiled
        self.model = model
        self.options = options
        self.observing = False
        self.calls: list[tuple[float, list[Any]]] = []
        self.findings = CompileFindings(options=describe_options(options))
        self.fingerprint: dict | None = None  # the Dynamo graphs' operators (graph_diff)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.observing:
            return self.compiled(*args, **kwargs)
        before = {_metric_id(metric) for metric in _metrics()}
        started = time.perf_counter()
        output = self.compiled(*args, **kwargs)
        seconds = time.perf_counter() - started
        compiled = [metric for metric in _metrics() if _metric_id(metric) not in before]
        self.calls.append((seconds, compiled))
        return output


@dataclass
class CompileArtifact:
    """What mode="compile" saves: the compile cache (filled when saved), with the model and
    options it compiles (a cache is only ever used by compiling the same code again) and the
    Dynamo graphs' code, kept beside it under --ts-artifacts."""

    module: CompiledModule
    graph_code: str = ""
    graph_text: str = ""

    @property
    def model(self) -> Any:
        return self.module.model

    @property
    def options(self) -> dict[str, Any]:
        return self.module.options

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)


class CompileBackend(Backend):
    name = "compile"
    converter = "torch.compile"
    suffix = ".cache"
    fresh_loader = "compile"
    shared_fresh_worker = False  # its fresh process imports the user's code: one per check
    control_flow = "coverage"  # Dynamo breaks the graph at a data-dependent branch: never frozen
    records_python_values = False  # it guards on them and compiles again: values are honoured
    tolerances = TOLERANCES
    # A check costs a cold Inductor compile per input shape and another in the fresh process
    # (resnet18: 92 s against trace's few; benchmarks/compile_modes.py): named, not implied
    in_all = False

    def missing_reason(self, options: Any = None, device: str = "cpu") -> str | None:
        torch = import_torch()
        if not hasattr(torch, "compile"):
            return f"mode='compile' needs torch >= 2.0 (this is torch {torch.__version__})"
        try:
            from torch._dynamo import is_dynamo_supported

            if not is_dynamo_supported():
                return (
                    f"torch.compile does not run on this platform or Python "
                    f"({sys.platform}, Python {sys.version_info.major}.{sys.version_info.minor})"
                    f" with torch {torch.__version__}; check the model with mode='export' instead"
                )
        except ImportError:
            pass
        chosen = dict(getattr(options, "compile_options", None) or {})
        if chosen.get("backend", "inductor") == "inductor" and not device.startswith("cuda"):
            if not _cxx_found(torch):
                return (
                    "mode='compile' with the Inductor backend builds CPU kernels with a C++ "
                    "compiler, and none was found ($CXX, g++, c++, clang++): install one (apt "
                    "install g++), or check Dynamo without Inductor's code generation: "
                    "compile_options={'backend': 'aot_eager'}"
                )
        return None

    def roundtrip_missing_reason(self) -> str | None:
        torch = import_torch()
        compiler = getattr(torch, "compiler", None)
        if hasattr(compiler, "save_cache_artifacts") and hasattr(compiler, "load_cache_artifacts"):
            return None
        return (
            f"a compile cache round trip needs torch.compiler.save_cache_artifacts, which torch "
            f"{torch.__version__} lacks (it came with torch 2.7)"
        )

    def convert(self, model: Any, args: tuple, kwargs: dict, target: Target) -> Conversion:
        torch = import_torch()
        options = dict(target.compile_options)
        recorded: list[RecordedWarning] = []
        findings_graphs: list[Any] = []
        with recording_warnings(recorded):
            explained, not_explained = _explain(torch, model, args, kwargs, findings_graphs)
            started = time.perf_counter()
            try:
                compiled = torch.compile(model, **options)
                compiled(*args, **kwargs)
            except Exception as error:
                failure = ConversionFailed(self.explain(model, error, options))
                failure.full_text = strip_ansi(str(error))
                raise failure from None
            seconds = time.perf_counter() - started
        module = CompiledModule(compiled, model, options)
        findings = module.findings
        findings.compile_seconds[0] = seconds
        if explained is None:
            findings.explained, findings.not_explained = False, not_explained
        else:
            findings.graphs = explained.graph_count
            findings.graph_breaks = graph_breaks(explained)
        module.observing = True
        graphs = findings_graphs[0] if findings_graphs else []
        module.fingerprint = _merged([fx_ops(graph.graph) for graph in graphs])
        artifact = CompileArtifact(
            module,
            "\n\n".join(getattr(graph, "code", "") for graph in graphs),
            "\n\n".join(str(getattr(graph, "graph", "")) for graph in graphs),
        )
        return Conversion(module, seconds, recorded, artifact)

    def explain(self, model: Any, error: BaseException, options: dict) -> str:
        """A compile that failed (a graph break under fullgraph=True, a backend error), at
        the user's innermost line, with Dynamo's reason cut to what a reader needs."""
        text = strip_ansi(str(error)).strip() or type(error).__name__
        lines = failure_header(self.converter, model, self.name, error)
        location = _innermost_user_line(text)
        if location is not None and not any(" at " in line for line in lines[1:]):
            lines.append(f"  at {display_path(location[0])}:{location[1]}: {location[2]}")
        # Dynamo's title and explanation; its hints, debug context and links are left out
        # (the hint below says what to do; the whole text is kept under --ts-artifacts)
        kept = [
            line
            for line in text.splitlines()
            if line.strip()
            and not line.strip().startswith(
                ("Hint:", "Developer debug context", "For more details", "from user code")
            )
            and not _FILE_LINE.search(line)  # the user's line is named above, path shortened
        ]
        lines.append(f"  {type(error).__name__}: " + first_lines("\n".join(kept), 4, 140)
                     .replace("\n", "\n    "))  # fmt: skip
        if options.get("fullgraph"):
            kind = break_kind(text)
            lines.append(
                f"hint: fullgraph=True makes every graph break an error, and this is a {kind}; "
                + break_hint([GraphBreak("", 0, "", kind, "", True)])
                .removesuffix("; fullgraph=True in compile_options makes any break an error")
            )
        elif "InvalidCxxCompiler" in text or "C++ compiler" in text:
            lines.append(
                "hint: Inductor builds CPU kernels with a C++ compiler, and none works here: "
                "install one (apt install g++) or set $CXX; or compile_options={'backend': "
                "'aot_eager'} checks Dynamo without Inductor"
            )
        else:
            lines.append(
                "hint: compile_options={'backend': 'aot_eager'} tells a Dynamo problem from an "
                "Inductor one; torch._dynamo.explain(model)(*inputs) lists what Dynamo saw"
            )
        return "\n".join(lines)

    def fingerprint(self, conversion: Conversion) -> Any:
        return conversion.module.fingerprint

    def findings(self, conversion: Conversion) -> CompileFindings:
        """The recompiles of the parity calls (input set i is call i), added to the graph
        breaks found while converting; the module stops observing (timing calls through)."""
        module = conversion.module
        findings = module.findings
        for index, (seconds, compiled) in enumerate(module.calls):
            if compiled and index:  # set 0 compiled while converting: its time is counted
                findings.compile_seconds[index] = seconds
            for metric in compiled:
                reason = getattr(metric, "recompile_reason", None)
                if not reason and not getattr(metric, "cache_size", 0):
                    continue  # a frame compiled for the first time (after a break): no guard
                words, hint = (
                    _in_words(reason)
                    if reason
                    else ("compiled again (this torch does not record which guard failed)", None)
                )
                function = (
                    f"{getattr(metric, 'co_name', 'forward')} "
                    f"({display_path(str(getattr(metric, 'co_filename', '?')))}:"
                    f"{getattr(metric, 'co_firstlineno', '?')})"
                )
                findings.recompiles.append(
                    Recompile(index, reason or "", words, hint, function, seconds)
                )
        module.calls = []
        module.observing = False
        return findings

    def owns(self, artifact: Any) -> bool:
        return isinstance(artifact, CompileArtifact)

    def save(self, artifact: Any, path: Path) -> None:
        """The compile cache of everything compiled so far (this model's graphs among them)."""
        torch = import_torch()
        save = getattr(getattr(torch, "compiler", None), "save_cache_artifacts", None)
        if save is None:
            raise RuntimeError(
                f"torch {torch.__version__} cannot save a compile cache "
                f"(torch.compiler.save_cache_artifacts needs torch >= 2.7)"
            )
        saved = save()
        data, info = saved if saved is not None else (b"", None)
        kinds = getattr(info, "artifacts", None) or {}
        artifact.module.findings.cache_kinds = {str(k): len(keys) for k, keys in kinds.items()}
        path.write_bytes(data)

    def describe(self, artifact: Any) -> tuple[str, str]:
        return artifact.graph_code, artifact.graph_text

    def load(self, path: Path, device: Any, like: Any = None) -> Any:
        """The cache loaded into this process after Dynamo forgot what it compiled, and the
        model compiled again from it (lazily, on the first call of each input set)."""
        torch = import_torch()
        if like is None or not hasattr(like, "model"):
            raise RuntimeError(
                "a compile cache is loaded by compiling the model it came from again; round-trip "
                "it with torchscript.check(model, inputs, mode='compile')"
            )
        torch._dynamo.reset()
        data = path.read_bytes()
        if data:
            torch.compiler.load_cache_artifacts(data)
        module = CompiledModule(torch.compile(like.model, **like.options), like.model, like.options)
        module.findings = like.findings if isinstance(like, CompiledModule) else module.findings
        return module

    def run_fresh(
        self, session: Any, path: Path, cpu_sets: list[tuple], device: str, converted: Any
    ) -> tuple[list[Any], dict]:
        """A fresh Python process with an empty Inductor cache, the user's code importable (a
        torch.compile deployment ships it), the cache loaded, the model compiled and run on every
        input set; each set's first call is its warm compile time."""
        from ..deploy.fresh_process import FreshProcessSkipped

        torch = import_torch()
        workdir = Path(tempfile.mkdtemp(prefix="pytest-torchscript-compile-"))
        try:
            payload = workdir / "model.pt"
            try:
                torch.save({"model": converted.model, "options": converted.options}, payload)
            except Exception as error:  # noqa: BLE001 - pickling says what it cannot take
                raise FreshProcessSkipped(
                    f"the model cannot be handed to a fresh process ({type(error).__name__}: "
                    f"{first_lines(str(error), 1, 150)}): define its class, and any backend "
                    f"callable in compile_options, at the top level of a module"
                ) from None
            inputs, outputs = workdir / "inputs.pt", workdir / "outputs.pt"
            torch.save(cpu_sets, inputs)
            request = {
                "payload": str(payload),
                "cache": str(path),
                "inputs": str(inputs),
                "outputs": str(outputs),
                "device": device,
                "sys_path": [entry for entry in sys.path if entry],
            }
            reply = _run_worker(request, workdir)
            loaded = torch.load(outputs, weights_only=False, map_location=device)  # ours
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        findings = converted.findings
        findings.warm_seconds = dict(enumerate(reply.get("seconds", [])))
        findings.warm_where = "fresh process"
        reply["seconds"] = sum(reply.get("seconds", []))
        return loaded, reply

    def release(self) -> None:
        """Dynamo's caches hold every model compiled in this test: dropped when it ends."""
        torch = import_torch()
        with contextlib.suppress(Exception):
            torch._dynamo.reset()


def _merged(fingerprints: list[dict]) -> dict | None:
    """One fingerprint of all the graphs Dynamo made of the model (a graph break: several)."""
    if not fingerprints:
        return None
    merged: dict[str, dict[str, int]] = {}
    for fingerprint in fingerprints:
        for path, ops in fingerprint.items():
            for op, count in ops.items():
                merged.setdefault(path, {})[op] = merged.get(path, {}).get(op, 0) + count
    return merged


def _run_worker(request: dict, workdir: Path) -> dict:
    """Run ``compile_worker.py`` on ``request``; its reply, or FreshProcessError saying why."""
    from ..deploy.fresh_process import FreshProcessError

    request_path = workdir / "request.json"
    request_path.write_text(json.dumps(request))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["TORCHINDUCTOR_CACHE_DIR"] = str(workdir / "inductor-cache")  # only the cache loaded
    env["TRITON_CACHE_DIR"] = str(workdir / "triton-cache")
    process = subprocess.Popen(
        [sys.executable, str(_WORKER_SCRIPT), str(request_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=FRESH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise FreshProcessError(
            f"the fresh process did not compile and run the model within {FRESH_TIMEOUT_S:.0f} s"
        ) from None
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        tail = "\n  ".join(stderr.strip().splitlines()[-8:])
        how = (
            f"crashed ({signal.Signals(-process.returncode).name})"
            if process.returncode < 0
            else f"exited with code {process.returncode}"
        )
        raise FreshProcessError(f"the fresh process {how}" + (f":\n  {tail}" if tail else ""))
    reply = json.loads(lines[-1])
    if not reply.get("ok"):
        raise FreshProcessError(str(reply.get("error", "")).strip())
    return reply


def _explain(
    torch: Any, model: Any, args: tuple, kwargs: dict, graphs: list
) -> tuple[Any, str | None]:
    """``torch._dynamo.explain`` on the example: its graphs and graph breaks, or (None, why)."""
    explain = getattr(getattr(torch, "_dynamo", None), "explain", None)
    if explain is None:
        return None, f"torch {torch.__version__} has no torch._dynamo.explain"
    try:
        with contextlib.redirect_stdout(sys.stderr):  # a print() in forward runs once more
            output = explain(model)(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - said in the report, the real compile decides
        return None, (
            f"torch._dynamo.explain failed ({type(error).__name__}: "
            f"{first_lines(str(error), 1, 150)})"
        )
    graphs.append(list(getattr(output, "graphs", [])))
    return output, None


def _innermost_user_line(text: str) -> tuple[str, int, str] | None:
    """The last ``File "...", line N`` of Dynamo's message that is the user's, with its code."""
    import linecache

    for found in reversed(list(_FILE_LINE.finditer(text))):
        if not is_library_file(found["file"]):
            line = int(found["line"])
            return found["file"], line, linecache.getline(found["file"], line).strip()
    return None


def _cxx_found(torch: Any) -> bool:
    """Whether Inductor finds a C++ compiler for CPU kernels ($CXX, its configured one, or
    the usual names)."""
    configured = []
    with contextlib.suppress(Exception):
        from torch._inductor import config

        configured = [name for name in (config.cpp.cxx or ()) if isinstance(name, str)]
    names = [os.environ.get("CXX"), *configured, *_COMPILERS]
    return any(name and shutil.which(name) for name in names)


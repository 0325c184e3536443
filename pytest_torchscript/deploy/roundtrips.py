"""The round trips of a check: the artifact saved (privately, then published to
``--ts-artifacts``), reloaded in this process, loaded in a fresh Python process that never
imported the user's code, and run by LibTorch in a C++ process; each compared with eager.
What differs between modes (how the artifact is saved and loaded, what the fresh process and
C++ feed it) is asked of the check's backend.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from ..check.inputs import plain_containers
from ..check.jit_warnings import (
    flat_tensors,
    import_torch,
    recording_warnings,
)
from ..check.parity_stage import compare, eager_zeroed_hint
from ..check.report import RoundTripResult, describe_mismatch
from ..check.stages import Stop
from ..text import first_lines
from . import artifacts
from .cpp_runner import CppRunFailed, CppUnavailable
from .cpp_runner import run as run_in_cpp
from .fresh_process import FreshProcessError, FreshProcessSkipped


def roundtrip_all(ctx: Any, conversion: Any, input_sets: list, eager: list) -> Any:
    """Save, reload and compare; then the fresh process and C++. Returns the reloaded module
    (timed beside the converted one)."""
    options, backend = ctx.options, ctx.backend
    missing = backend.roundtrip_missing_reason()
    if missing is not None:  # said in each round trip's place, never an ok
        for where in ("in-process", "fresh process")[: 2 if options.fresh_process else 1]:
            ctx.report.roundtrips.append(RoundTripResult(where, skipped=missing, skip_kind="torch"))
        return None
    path = save(ctx, conversion.artifact, backend)
    loaded = _in_process(ctx, path, conversion, input_sets, eager)
    if options.fresh_process:
        # Not overlapped with the in-process round trip: on a machine with few cores both
        # processes' intra-op threads spin against each other, and a suite of eight
        # torchvision models took 1.8x as long (benchmarks/suite_overhead.py).
        fresh_process_parity(ctx, path, input_sets, eager, conversion.module)
        cpp_parity(ctx, path, input_sets, eager)
    return loaded


def _in_process(ctx: Any, path: Path, conversion: Any, input_sets: list, eager: list) -> Any:
    """The artifact loaded back in this process and compared with eager."""
    report, options, backend = ctx.report, ctx.options, ctx.backend
    in_process = RoundTripResult("in-process")
    report.roundtrips.append(in_process)
    try:
        loaded = artifacts.load(path, ctx.device, report.warnings, backend, conversion.module)
    except Exception as error:
        in_process.error = f"{type(error).__name__}: {first_lines(str(error))}"
        raise Stop("roundtrip", f"{path} does not load back: {in_process.error}") from None
    outputs = []
    for index, input_set in enumerate(input_sets):
        args, kwargs = input_set.copy_to(ctx.device)
        try:
            # without autograd, as eager and the converted module ran and as the timing stage
            # calls it: a TorchScript module's first calls fix its optimised plan, and a plan
            # profiled with autograd on made later no_grad calls of a small MLP about a quarter
            # slower (reloaded 19.3 us against converted 15.4 us for one graph)
            with recording_warnings(report.warnings), import_torch().no_grad():
                outputs.append(loaded(*args, **kwargs))
        except Exception as error:
            in_process.error = f"{type(error).__name__}: {first_lines(str(error))}"
            raise Stop(
                "roundtrip",
                f"the reloaded {path.name} raised on input set {index} "
                f"{input_set.describe()}, where the converted module did not: "
                f"{in_process.error}",
            ) from None
    in_process.parity = [
        compare(eager[i][0], output, i, options) for i, output in enumerate(outputs)
    ]
    if not in_process.ok:
        raise Stop(
            "roundtrip",
            describe_mismatch(in_process.parity, len(input_sets), f"the reloaded {path.name}")
            + eager_zeroed_hint(ctx, in_process.parity),
        )
    return loaded


# How LibTorch (in the fresh process or in C++) names an operator nothing registered there.
_MISSING_OPERATOR = re.compile(r"Unknown builtin op: (\w+)::(\w+)")


def fresh_process_parity(
    ctx: Any, path: Path, input_sets: list, eager: list, converted: Any
) -> None:
    """The artifact in a fresh Python process that never imported the user's code."""
    report, backend = ctx.report, ctx.backend
    fresh = RoundTripResult("fresh process")
    report.roundtrips.append(fresh)
    cpu_sets = backend.fresh_inputs(converted, [s.copy_to("cpu") for s in input_sets])
    try:
        outputs, reply = backend.run_fresh(ctx.session, path, cpu_sets, str(ctx.device), converted)
    except FreshProcessSkipped as skipped:
        fresh.skip_kind, fresh.skipped = "model", str(skipped)
        return
    except FreshProcessError as error:
        fresh.error = str(error)
        hint = ""
        root = ctx.item.config.rootpath
        if re.search(r"Deserializing \S*Cache in pytree is not registered", str(error)):
            hint = (
                "\nhint: the .pt2 returns transformers' key/value cache, a Python class a "
                "deployment without transformers cannot load; build the model from a config "
                "with use_cache=False (from_pretrained(..., use_cache=False)), or set "
                "model.config.use_cache = False before returning it (or return the cache's "
                "tensors yourself)"
            )
        elif "in pytree is not registered" in str(error):
            hint = (
                "\nhint: the .pt2 stores its inputs or outputs as a Python class registered "
                "as a pytree node (by a library or your code), which a deployment without "
                "that code cannot load; return tuples or dicts of tensors (transformers: "
                "pass return_dict=False to forward, e.g. in each input set "
                "{'input_ids': ids, 'return_dict': False}; setting it in the config breaks "
                "some models in transformers 5)" + _declared_pytree_module(str(error), root)
            )
        missing = _MISSING_OPERATOR.search(str(error))
        if missing:
            hint = _registered_operator_hint(missing.group(1), missing.group(2), root)
        raise Stop(
            "fresh-process",
            f"{path} could not be loaded and run in a fresh Python process that never "
            f"imported your code:\n  " + first_lines(str(error)).replace("\n", "\n  ") + hint,
        ) from None
    outputs = backend.fresh_outputs(converted, outputs)
    fresh.seconds = reply.get("seconds", 0.0)
    fresh.user_modules = reply.get("user_modules", [])
    fresh.process_id = reply.get("pid")
    fresh.parity = [
        compare(eager[i][0], output, i, ctx.options) for i, output in enumerate(outputs)
    ]
    if not fresh.ok:
        raise Stop(
            "fresh-process",
            describe_mismatch(
                fresh.parity, len(input_sets), f"{path.name} loaded in a fresh process"
            )
            + eager_zeroed_hint(ctx, fresh.parity),
        )


def _installed_library(name: str, root: Path) -> bool:
    """Whether ``name`` is a package installed here, outside the user's project (whose own
    modules a deployment does not import: they are the code the fresh process leaves out)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name.split(".")[0])
    except (ImportError, ValueError):
        return False
    origin = getattr(spec, "origin", None) or next(
        iter(getattr(spec, "submodule_search_locations", None) or []), None
    )
    return bool(origin) and not Path(origin).resolve().is_relative_to(root.resolve())


def _declared_pytree_module(error: str, root: Path) -> str:
    """Where the unregistered class comes from an installed library (transformers'
    ``ModelOutput``), a deployment that imports the module defining it loads the file: say
    which module to declare."""
    found = re.search(r"Deserializing ([\w.]+)\.(\w+) in pytree is not registered", error)
    if not found or not _installed_library(found.group(1), root):
        return ""
    return (
        f"; or, where your deployment imports {found.group(1)} (which registers "
        f"{found.group(2)} when it is imported), declare it: "
        f"--ts-deploy-imports={found.group(1)} (ini ts_deploy_imports)"
    )


def _registered_operator_hint(namespace: str, name: str, root: Path) -> str:
    """An operator the fresh process lacks is registered by Python code on import: an
    installed library (torchvision) the deployment imports too, to be declared; or the
    user's own code, which a deployment must ship as a library."""
    library = (
        f"--ts-deploy-imports={namespace}"
        if _installed_library(namespace, root)
        else "--ts-deploy-imports=MODULE"
    )
    return (
        f"\nhint: the artifact calls {namespace}::{name}, an operator that Python code "
        f"registers when it is imported (torch.library in your code, an extension, a "
        f"library such as torchvision), so a deployment must load it too: for an installed "
        f"library your deployment imports, declare it, {library} (ini ts_deploy_imports), "
        f"and the fresh process imports it first; for your own code, ship the operator as a "
        f"library the deployment loads (torch.ops.load_library)"
    )


def cpp_parity(ctx: Any, path: Path, input_sets: list, eager: list) -> None:
    """The artifact in a C++ process with LibTorch alone, as a C++ service loads it."""
    report, session = ctx.report, ctx.session
    setting = session.settings.cpp
    if setting == "off":
        return
    result = RoundTripResult("C++")
    report.roundtrips.append(result)
    if ctx.backend.cpp_inputs is None:
        result.skip_kind = "format"
        result.skipped = (
            f"the C++ round trip runs TorchScript (.pt) and AOTInductor (mode='aoti') "
            f"artifacts; a {path.suffix} file from mode={report.mode!r} is loaded by "
            f"another runtime"
        )
        return
    # plain containers: a C++ process has no Python classes (a NamedTuple is rebuilt from
    # the type forward declares)
    cpu_sets = [plain_containers(input_set.copy_to("cpu")) for input_set in input_sets]
    expected = [output for output, _ in eager]
    if ctx.backend.cpp_inputs == "flat":  # the loader takes and returns lists of tensors
        cpu_sets = [(tuple(flat_tensors((args, kwargs))), {}) for args, kwargs in cpu_sets]
        expected = [flat_tensors(output) for output in expected]
    try:
        built = session.cpp_runner(ctx.device.type)
    except CppUnavailable as missing:
        if setting == "require":
            raise Stop("cpp", f"--ts-cpp=require, and {missing}") from None
        result.skip_kind, result.skipped = "toolchain", str(missing)
        return
    started = time.perf_counter()
    timeout = session.settings.cpp_timeout
    try:
        if built.serves:  # the session's runner process: one start and LibTorch load a session
            outputs, _ = session.cpp_server(built).run(path, cpu_sets, str(ctx.device), timeout)
        else:  # PYTEST_TORCHSCRIPT_CPP_RUNNER: the user's harness, one process per check
            outputs, _ = run_in_cpp(
                built.path, path, cpu_sets, str(ctx.device), session.private_root() / "cpp", timeout
            )
    except CppRunFailed as error:
        missing = _MISSING_OPERATOR.search(str(error))
        imports = session.settings.deploy_imports
        if missing and imports and setting != "require":
            # The user declared the library that registers it; the runner links LibTorch
            # alone, so only a C++ build of that library (libtorchvision) could provide it.
            result.skip_kind = "operators"
            result.skipped = (
                f"{path.name} calls {missing.group(1)}::{missing.group(2)}, an operator of "
                f"a library your deployment loads (--ts-deploy-imports={','.join(imports)}); "
                f"the C++ runner links LibTorch alone, so a C++ service must link that "
                f"library's C++ build too (torchvision: libtorchvision)"
            )
            return
        result.error = str(error)
        raise Stop(
            "cpp",
            f"{path} could not be loaded and run by LibTorch in a C++ process, as a C++ "
            f"service would:\n  " + str(error).replace("\n", "\n  "),
        ) from None
    result.seconds = time.perf_counter() - started
    result.parity = [
        compare(expected[i], output, i, ctx.options) for i, output in enumerate(outputs)
    ]
    if not result.ok:
        raise Stop(
            "cpp",
            describe_mismatch(result.parity, len(input_sets), f"{path.name} run by LibTorch in C++")
            + eager_zeroed_hint(ctx, result.parity),
        )


def save(ctx: Any, artifact: Any, backend: Any) -> Path:
    """Save privately (the only copy this run loads), then publish to ``--ts-artifacts``."""
    report = ctx.report
    folder = artifacts.folder_for(ctx.session.private_root(), ctx.test_id)
    count = ctx.artifact_counts.get(report.mode, 0) + 1
    ctx.artifact_counts[report.mode] = count
    stem = report.mode if count == 1 else f"{report.mode}-{count}"
    published_root = ctx.session.settings.artifact_root
    try:
        path = artifacts.save(artifact, folder, stem, report.warnings, backend)
        published = path
        if published_root is not None:
            folder = artifacts.folder_for(published_root, ctx.test_id)
            published = artifacts.publish(path, folder)
            ctx.session.published_artifacts.add(published)
    except Exception as error:
        hint = ""
        unregistered = re.search(r"TreeSpec of namedtuple class <class '([^']+)'>", str(error))
        unnamed = re.search(r"No registered serialization name for <class '([^']+)'>", str(error))
        if unnamed:
            name = unnamed.group(1)
            hint = (
                f"\nhint: the exported program takes or returns {name}, registered as a "
                f"pytree node without the name a .pt2 stores it by: register it with "
                f"torch.export.register_dataclass({name.rsplit('.', 1)[-1]}, "
                f"serialized_type_name={name!r}) (and a deployment then needs that class "
                f"too), or return a tuple or a dict of tensors"
            )
        elif unregistered:
            hint = (
                f"\nhint: the exported program takes or returns {unregistered.group(1)}, a "
                f"NamedTuple of your code, which a .pt2 can store only once torch knows how "
                f"to name it (and a deployment without your code could not rebuild it "
                f"anyway); return a tuple or a dict of tensors instead"
            )
        raise Stop(
            "roundtrip",
            f"saving the converted module to {folder} failed: {type(error).__name__}: "
            f"{first_lines(str(error))}{hint}",
        ) from None
    report.artifact_path = str(published)
    report.artifact_bytes = path.stat().st_size
    return path

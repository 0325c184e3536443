"""The C++ round trip: the artifact loaded by LibTorch in a C++ process, as a C++ service
deploys it, with every input set run and the outputs handed back for parity.

The runner (``cpp/runner.cpp``, shipped with the package) serves the whole session from one
process (``CppServer``): starting a process and loading LibTorch cost about half a second,
which a new process per check paid every time (the whole excess of the default check over the
hand-written test). A crash fails the check in flight, naming the signal, and the next check
starts a new runner; a hang is killed with its process group at ``ts_cpp_timeout``; the runner
exits when the session closes it, when its stdin ends, and (Linux) when pytest dies.

It is built on first use against the
LibTorch that the installed torch wheel contains (its headers and libraries, found through
``torch.utils.cpp_extension``), with the system's C++20 compiler, and cached per torch build,
compiler and ABI in the user's cache directory; a file lock makes concurrent sessions (xdist
workers, parallel CI jobs) build it once. Where no compiler or no headers exist, the round
trip is skipped with the reason, or fails with ``--ts-cpp=require``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..check.jit_warnings import import_torch
from ..files import exclusive_temporary, locked
from ..text import first_lines

SOURCE = Path(__file__).with_name("cpp") / "runner.cpp"
COMPILERS = ("c++", "g++", "clang++")
BUILD_TIMEOUT_S = 600.0
RUN_TIMEOUT_S = 300.0


class CppUnavailable(Exception):
    """No runner can be built here; the message says what is missing."""


class CppRunFailed(Exception):
    """The runner ran and failed: it rejected the artifact, crashed or hung."""


@dataclass(frozen=True)
class Runner:
    path: Path
    built_seconds: float  # 0 when the cached binary was reused
    # Whether it serves a session (``--serve``): the plugin's own runner does; a runner named
    # by PYTEST_TORCHSCRIPT_CPP_RUNNER keeps the documented one-shot command line.
    serves: bool = True


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(
        os.environ.get("PYTEST_TORCHSCRIPT_CACHE", os.path.join(base, "pytest-torchscript"))
    )


AOTI_HEADER = Path("torch", "csrc", "inductor", "aoti_package", "model_package_loader.h")


def _toolchain(device_type: str) -> tuple[str, list[str], list[str], list[str]]:
    """(compiler, include dirs, library dirs, libraries), or CppUnavailable saying why."""
    torch = import_torch()
    compiler = os.environ.get("CXX") or next(filter(shutil.which, COMPILERS), None)
    if os.environ.get("CXX") and shutil.which(compiler) is None:
        raise CppUnavailable(
            f"$CXX={compiler} is not a compiler found on this machine; point CXX at one with "
            f"C++20 support (g++ 10+, clang 12+), or unset it to use c++, g++ or clang++"
        )
    if compiler is None or shutil.which(compiler) is None:
        raise CppUnavailable(
            f"no C++ compiler found ({', '.join(COMPILERS)} or $CXX); install one with C++20 "
            f"support (g++ 10+, clang 12+) to run the C++ round trip"
        )
    quiet = logging.getLogger("torch.utils.cpp_extension")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # it logs a warning about CUDA_HOME on CPU-only machines
    try:
        from torch.utils import cpp_extension

        includes, libraries = cpp_extension.include_paths(), cpp_extension.library_paths()
    finally:
        quiet.setLevel(level)
    if not any(Path(folder, "torch", "script.h").exists() for folder in includes):
        raise CppUnavailable(
            f"torch {torch.__version__} ships no LibTorch C++ headers (torch/script.h) in "
            f"{includes[0] if includes else 'its include folder'}"
        )
    names = ["torch", "torch_cpu", "c10"]
    if device_type == "cuda":
        names += ["torch_cuda", "c10_cuda"]
    return compiler, includes, libraries, names


def runner(device_type: str = "cpu") -> Runner:
    """The built runner for this torch, compiler and device type: cached, or built now.

    ``PYTEST_TORCHSCRIPT_CPP_RUNNER`` names a runner to use instead (same command line): your
    own C++ service's harness, or a prebuilt binary on machines without a compiler."""
    given = os.environ.get("PYTEST_TORCHSCRIPT_CPP_RUNNER")
    if given:
        if not os.access(given, os.X_OK):
            raise CppUnavailable(f"PYTEST_TORCHSCRIPT_CPP_RUNNER={given} is not an executable")
        return Runner(Path(given), 0.0, serves=False)
    torch = import_torch()
    compiler, includes, libraries, names = _toolchain(device_type)
    # AOTInductor's loader where this LibTorch has it; TorchScript artifacts run either way
    defines = (
        ["-DPYTEST_TORCHSCRIPT_AOTI"]
        if any(Path(folder, AOTI_HEADER).exists() for folder in includes)
        else []
    )
    version = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[:1]
    abi = int(torch.compiled_with_cxx11_abi())
    key = hashlib.sha256(
        "\n".join(
            [
                torch.__version__,
                str(Path(torch.__file__).parent),
                *version,
                str(abi),
                device_type,
                *defines,
                SOURCE.read_text(),
            ]
        ).encode()
    ).hexdigest()[:16]
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CppUnavailable(
            f"cannot create the C++ runner cache {folder} ({error.strerror or error}); set "
            f"PYTEST_TORCHSCRIPT_CACHE to a writable folder"
        ) from None
    binary = folder / f"runner-{key}"
    if binary.exists():
        return Runner(binary, 0.0)
    try:
        return _build(binary, key, folder, compiler, includes, libraries, names, abi, defines)
    except OSError as error:  # a read-only cache, a full disk
        raise CppUnavailable(
            f"cannot write the C++ runner into {folder} ({error.strerror or error}); set "
            f"PYTEST_TORCHSCRIPT_CACHE to a writable folder"
        ) from None


def _build(binary, key, folder, compiler, includes, libraries, names, abi, defines) -> Runner:
    """Compile the runner into ``binary`` under the cache's lock (once across sessions)."""
    torch = import_torch()
    with locked(folder / f"runner-{key}.lock"):
        if binary.exists():  # another session built it while this one waited
            return Runner(binary, 0.0)
        started = time.perf_counter()
        temporary = exclusive_temporary(binary)
        command = [
            compiler, "-std=c++20", "-O1", f"-D_GLIBCXX_USE_CXX11_ABI={abi}", *defines,
            *[f"-I{path}" for path in includes], str(SOURCE), "-o", str(temporary),
            *[f"-L{path}" for path in libraries],
            *[f"-Wl,-rpath,{path}" for path in libraries],
            "-Wl,--no-as-needed", *[f"-l{name}" for name in names],
        ]  # fmt: skip
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            temporary.unlink(missing_ok=True)
            raise CppUnavailable(
                f"building the C++ runner took over {BUILD_TIMEOUT_S:.0f} s"
            ) from None
        if result.returncode != 0:
            temporary.unlink(missing_ok=True)
            said = first_lines(result.stderr or result.stdout, 8).strip()
            raise CppUnavailable(
                f"{compiler} could not build the C++ runner against torch {torch.__version__}'s "
                f"LibTorch:\n  "
                + (
                    said.replace("\n", "\n  ")
                    if said
                    else f"(it exited with status {result.returncode} and printed nothing)"
                )
            )
        os.chmod(temporary, 0o755)
        os.replace(temporary, binary)
        return Runner(binary, time.perf_counter() - started)


class CppServer:
    """One runner process for the session, reused by every check (see the module docstring).
    Requests are one line each on its stdin; replies "ok" or "error" on its stdout, with
    LibTorch's message in a file; its stderr goes to a log, quoted from where a request began."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self._process: subprocess.Popen | None = None
        self._log = workdir / "runner-stderr.log"
        self._received = b""
        self._timed_out = False  # the last reply was given up on (the runner killed)

    def _start(self) -> subprocess.Popen:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self._log, "ab") as log:
            self._process = subprocess.Popen(
                [str(self.binary), "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # its own group: a hang is killed with what it started
                env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
                bufsize=0,
            )
        self._received = b""
        return self._process

    def run(
        self, artifact: Path, input_sets: list[Any], device: str, timeout_s: float
    ) -> tuple[list[Any], str]:
        """Like ``run`` below, in the session's runner process."""
        torch = import_torch()
        self.workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.workdir) as scratch:
            inputs, outputs = Path(scratch, "inputs.pt"), Path(scratch, "outputs.pt")
            error_file = Path(scratch, "error.txt")
            torch.save([(tuple(args), dict(kwargs)) for args, kwargs in input_sets], inputs)
            logged = self._log.stat().st_size if self._log.exists() else 0
            process = self._start()
            request = "\t".join(map(str, (artifact, inputs, outputs, device, error_file)))
            try:
                process.stdin.write((request + "\n").encode())
                reply = self._reply(process, timeout_s)
            except (BrokenPipeError, OSError):
                reply = None
            if reply is None:  # it died: crashed, or killed for hanging
                code = process.wait()
                self._discard()
                said = self._said_since(logged)
                if code == -signal.SIGKILL and self._timed_out:
                    raise CppRunFailed(
                        f"the C++ runner did not finish within {timeout_s:.0f} s (killed)"
                        + (f":\n  {first_lines(said, 8)}" if said else "")
                    )
                name = signal.Signals(-code).name if code < 0 else f"exit status {code}"
                raise CppRunFailed(
                    f"the C++ runner crashed ({name}) on {artifact.name}"
                    + (f":\n  {first_lines(said, 8)}" if said else "")
                )
            if reply != "ok":
                message = error_file.read_text() if error_file.exists() else reply
                raise CppRunFailed(
                    f"LibTorch rejected {artifact.name}:\n  "
                    + first_lines(message, 10).replace("\n", "\n  ")
                )
            with _type_tags_allowed(torch):
                loaded = torch.load(outputs, weights_only=True, map_location=device)
            return loaded, self._said_since(logged)

    def _reply(self, process: subprocess.Popen, timeout_s: float) -> str | None:
        """The runner's next reply line; None if it died, or was killed after ``timeout_s``."""
        self._timed_out = False
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in self._received:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self._timed_out = True
                    self._kill(process)
                    return None
                chunk = os.read(process.stdout.fileno(), 1 << 16)
                if not chunk:
                    return None
                self._received += chunk
        line, _, self._received = self._received.partition(b"\n")
        return line.decode(errors="replace").strip()

    def _said_since(self, offset: int) -> str:
        try:
            with open(self._log, "rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace").strip()
        except OSError:
            return ""

    @staticmethod
    def _kill(process: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def _discard(self) -> None:
        from .fresh_process import end_process

        if self._process is not None:
            end_process(self._process, self._kill)
        self._process = None
        self._received = b""

    def close(self) -> None:
        """End the runner: its stdin closed (it exits), killed if it does not within 5 s."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                process.stdin.close()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._discard()


def run(
    binary: Path,
    artifact: Path,
    input_sets: list[Any],
    device: str,
    workdir: Path,
    timeout_s: float = RUN_TIMEOUT_S,
) -> tuple[list[Any], str]:
    """Run ``artifact`` on ``input_sets`` (CPU (args, kwargs) pairs) in the C++ runner; return
    its outputs (on the CPU) and its stderr, or raise CppRunFailed with what it said."""
    torch = import_torch()
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        inputs, outputs = Path(scratch, "inputs.pt"), Path(scratch, "outputs.pt")
        torch.save([(tuple(args), dict(kwargs)) for args, kwargs in input_sets], inputs)
        command = [str(binary), str(artifact), str(inputs), str(outputs), device]
        # Its own process group, so a hang is killed with everything it started.
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        )
        try:
            _, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate()
            raise CppRunFailed(
                f"the C++ runner did not finish within {timeout_s:.0f} s (killed)"
                + (f":\n  {first_lines(stderr, 8)}" if stderr.strip() else "")
            ) from None
        result = subprocess.CompletedProcess(command, process.returncode, "", stderr)
        if result.returncode < 0:
            name = signal.Signals(-result.returncode).name
            raise CppRunFailed(
                f"the C++ runner crashed ({name}) on {artifact.name}"
                + (f":\n  {first_lines(result.stderr, 8)}" if result.stderr.strip() else "")
            )
        if result.returncode != 0:
            raise CppRunFailed(
                f"LibTorch rejected {artifact.name}:\n  "
                + first_lines(result.stderr, 10).replace("\n", "\n  ")
            )
        with _type_tags_allowed(torch):
            loaded = torch.load(outputs, weights_only=True, map_location=device)
        return loaded, result.stderr


def _type_tags_allowed(torch: Any) -> Any:
    """weights_only loading (tensors and containers only) that also takes the tag LibTorch puts
    on typed lists and dicts: ``torch.jit._pickle.restore_type_tag``, a function that only sets
    that tag. Scoped where torch has ``safe_globals`` (2.5 and later); torch 2.4 has only the
    process-wide ``add_safe_globals``."""
    from torch.jit._pickle import restore_type_tag

    serialization = torch.serialization
    if hasattr(serialization, "safe_globals"):
        return serialization.safe_globals([restore_type_tag])
    serialization.add_safe_globals([restore_type_tag])
    return contextlib.nullcontext()

"""A reusable fresh Python process that loads artifacts without the user's code.

Starting an interpreter and importing torch costs seconds, so one worker serves the whole
session (one per xdist worker): it is started, without blocking, when the first check begins,
so its torch import overlaps that check's conversion. Requests are not overlapped with the
in-process work: on a machine with few cores both processes' intra-op threads spin against each
other (a suite of eight torchvision models took 1.8x as long). A worker that dies is restarted
for the next request, and its stderr is quoted in the failure.

Replies are read from the raw pipe into this object's own buffer: a buffered reader may take
two lines from the pipe at once (the worker's announcement and an answer, if both arrived),
and waiting on the pipe for the second would then never see it.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_WORKER_SCRIPT = Path(__file__).with_name("fresh_worker.py")
REPLY_TIMEOUT_S = 600.0


def end_process(process: subprocess.Popen, kill: Any = None) -> None:
    """Kill ``process`` if it still runs (with ``kill(process)`` where given: a process group),
    reap it and close its pipes; the worker processes' (fresh Python, C++ runner) one ending."""
    if process.poll() is None:
        (kill or subprocess.Popen.kill)(process)
    process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


class FreshProcessError(Exception):
    """The fresh process could not answer; the message says why and quotes its stderr."""


class FreshProcessSkipped(Exception):
    """This check cannot be run in a fresh process at all (a model that cannot be handed to
    one); the message says why, and the round trip says ``skip``, never ``ok``."""


class FreshProcess:
    def __init__(self, user_roots: list[str], imports: tuple[str, ...] = ()) -> None:
        self._user_roots = [os.path.abspath(root) for root in user_roots]
        self._imports = list(imports)  # --ts-deploy-imports: imported before each load
        self._process: subprocess.Popen | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="pytest-torchscript-fresh-"))
        self._stderr_path = self._workdir / "stderr.log"
        self._requests = 0
        self._ready = False
        self._received = b""  # read from the pipe, not yet a whole reply

    def start(self) -> None:
        """Start the worker if it is not running; returns at once."""
        if self._process is not None and self._process.poll() is None:
            return
        stderr = open(self._stderr_path, "ab")
        try:
            self._process = subprocess.Popen(
                [sys.executable, str(_WORKER_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=self._workdir,
                env=self._environment(),
                bufsize=0,  # raw pipes: see the module docstring
            )
        finally:
            stderr.close()
        self._ready = False
        self._received = b""

    def _environment(self) -> dict[str, str]:
        """The current environment without PYTHONPATH entries inside the user's project."""
        env = dict(os.environ)
        entries = [e for e in env.get("PYTHONPATH", "").split(os.pathsep) if e]
        kept = [e for e in entries if not self._inside_user_roots(os.path.abspath(e))]
        if kept:
            env["PYTHONPATH"] = os.pathsep.join(kept)
        else:
            env.pop("PYTHONPATH", None)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _inside_user_roots(self, path: str) -> bool:
        return any(path == root or path.startswith(root + os.sep) for root in self._user_roots)

    def run(
        self, artifact: Path, loader: str, input_sets: list[Any], device: str
    ) -> tuple[list[Any], dict]:
        """Load ``artifact`` in the worker with its mode's ``loader`` (a backend's
        ``fresh_loader``), run it on ``input_sets`` and return its outputs."""
        from ..check.jit_warnings import import_torch

        torch = import_torch()
        self.start()
        self._requests += 1
        inputs_path = self._workdir / f"inputs-{self._requests}.pt"
        outputs_path = self._workdir / f"outputs-{self._requests}.pt"
        torch.save(input_sets, inputs_path)
        try:
            if not self._ready:
                self._read_reply()  # the worker announces itself once torch is imported
                self._ready = True
            request = {
                "artifact": str(artifact),
                "loader": loader,
                "inputs": str(inputs_path),
                "outputs": str(outputs_path),
                "device": device,
                "user_roots": self._user_roots,
                "imports": self._imports,
            }
            self._send((json.dumps(request) + "\n").encode())
            reply = self._read_reply()
            if not reply.get("ok"):
                raise FreshProcessError(str(reply.get("error", "")).strip())
            # weights_only: plain containers of tensors, nothing that could run code on load
            outputs = torch.load(outputs_path, weights_only=True, map_location=device)
            return outputs, reply
        except (BrokenPipeError, OSError) as error:
            self._discard()
            raise FreshProcessError(
                f"the fresh process failed: {error}{self._stderr_tail()}"
            ) from None
        finally:
            for path in (inputs_path, outputs_path):
                path.unlink(missing_ok=True)

    def _send(self, data: bytes) -> None:
        assert self._process is not None and self._process.stdin is not None
        view = memoryview(data)
        while view:
            view = view[self._process.stdin.write(view) :]

    def _read_reply(self) -> dict:
        """The next line the worker wrote, as JSON; waits at most ``REPLY_TIMEOUT_S`` for it."""
        assert self._process is not None and self._process.stdout is not None
        limit = REPLY_TIMEOUT_S
        deadline = time.monotonic() + limit
        pipe = self._process.stdout
        with selectors.DefaultSelector() as selector:
            selector.register(pipe, selectors.EVENT_READ)
            while b"\n" not in self._received:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self._discard()
                    raise FreshProcessError(
                        f"the fresh process gave no answer within {limit:.0f} s"
                        f"{self._stderr_tail()}"
                    )
                chunk = os.read(pipe.fileno(), 1 << 16)
                if not chunk:
                    code = self._process.wait()
                    self._discard()
                    raise FreshProcessError(
                        f"the fresh process exited with code {code}{self._stderr_tail()}"
                    )
                self._received += chunk
        line, _, self._received = self._received.partition(b"\n")
        return json.loads(line)

    def _stderr_tail(self, lines: int = 15) -> str:
        try:
            text = self._stderr_path.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return ("; its stderr ends with:\n  " + "\n  ".join(text)) if text else ""

    def _discard(self) -> None:
        if self._process is not None:
            end_process(self._process)
        self._process = None
        self._received = b""

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            try:
                self._process.stdin.close()
                self._process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._discard()
        for path in self._workdir.glob("*"):
            path.unlink(missing_ok=True)
        try:
            self._workdir.rmdir()
        except OSError:
            pass

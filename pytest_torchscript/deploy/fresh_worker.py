"""The fresh interpreter that loads converted artifacts the way a deployment would.

It runs as a standalone script (never as part of the plugin package and never with the user's
directories on sys.path), so it proves that an artifact loads and runs without the user's
Python code. It imports only torch and the standard library, and the libraries the user
declares their deployment imports for its operators (``--ts-deploy-imports``). Protocol: one
JSON request per line on stdin, one JSON reply per line on the original stdout; anything else
the process prints goes to stderr.
"""

import importlib
import json
import logging
import os
import re
import sys
import time
import traceback
import warnings


def _plain(value):
    """Outputs as plain containers (TorchScript NamedTuples do not unpickle elsewhere)."""
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _to(value, device, torch):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_to(item, device, torch) for item in value)
    if isinstance(value, dict):
        return {key: _to(item, device, torch) for key, item in value.items()}
    return value


def _run_onnx(path, input_sets, device, torch):
    """An .onnx file under onnxruntime: each input set is a flat list of tensors, by position;
    each result is the flat list of outputs (the plugin rebuilds their structure)."""
    import onnxruntime

    providers = ["CPUExecutionProvider"]
    if (
        device.startswith("cuda")
        and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    ):
        providers.insert(0, "CUDAExecutionProvider")
    session = onnxruntime.InferenceSession(path, providers=providers)
    names = [entry.name for entry in session.get_inputs()]
    results = []
    for flat, _ in input_sets:
        feed = {name: tensor.numpy() for name, tensor in zip(names, flat)}
        results.append([torch.from_numpy(array).to(device) for array in session.run(None, feed)])
    return results


def _run_tvm(path, input_sets, device, torch):
    """A shared library TVM compiled, run by its Relax VM: flat tensors in and out, as for
    onnx."""
    import tvm
    from tvm import relax

    where = (
        tvm.cuda(int(device.split(":")[1]) if ":" in device else 0)
        if device.startswith("cuda")
        else tvm.cpu(0)
    )
    main = relax.VirtualMachine(tvm.runtime.load_module(path), where)["main"]
    results = []
    for flat, _ in input_sets:
        inputs = [tvm.runtime.from_dlpack(tensor.to(device).contiguous()) for tensor in flat]
        result = main(*inputs)
        items = [result] if hasattr(result, "shape") else list(result)
        results.append([torch.from_dlpack(item).to(device) for item in items])
    return results


# How each mode's artifact is loaded, as a deployment would (a backend's ``fresh_loader``).
_LOADERS = {
    "torchscript": lambda path, device, torch: torch.jit.load(path, map_location=device),
    "exported": lambda path, device, torch: torch.export.load(path).module(),
    "aoti": lambda path, device, torch: torch._inductor.aoti_load_package(path),
}


def _user_modules(roots):
    found = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if any(path.startswith(root + os.sep) for root in roots):
            found.append(name)
    return sorted(found)


def _import_deployment_libraries(names):
    """What the deployment imports for its operators (--ts-deploy-imports), as it would."""
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException as error:  # noqa: BLE001 - said as the reply's error
            raise RuntimeError(
                f"the fresh process could not import {name!r} (--ts-deploy-imports): "
                f"{type(error).__name__}: {error}"
            ) from None


def _handle(request, torch):
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _import_deployment_libraries(request.get("imports", []))
        artifact = request["artifact"]
        input_sets = torch.load(request["inputs"], weights_only=True)
        outputs = []
        loader = request["loader"]
        if loader == "onnx":
            outputs = _run_onnx(artifact, input_sets, request["device"], torch)
        elif loader == "tvm":
            outputs = _run_tvm(artifact, input_sets, request["device"], torch)
        else:
            module = _LOADERS[loader](artifact, request["device"], torch)
            with torch.no_grad():
                for args, kwargs in input_sets:
                    args = _to(args, request["device"], torch)
                    kwargs = _to(kwargs, request["device"], torch)
                    outputs.append(_plain(module(*args, **kwargs)))
        torch.save(outputs, request["outputs"])
    return {
        "ok": True,
        "pid": os.getpid(),
        "seconds": time.perf_counter() - started,
        "user_modules": _user_modules(request.get("user_roots", [])),
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    }


class _Collect(logging.Handler):
    """torch.export reports why a .pt2 does not deserialize through logging, not the error."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        self.messages.append(text)


def main():
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not break protocol
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch
    protocol.write(json.dumps({"ready": True, "torch": torch.__version__}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        collected = _Collect()
        loggers = [logging.getLogger(name) for name in ("torch", "torch.export")]  # no propagation
        for logger in loggers:
            logger.addHandler(collected)
        try:
            reply = _handle(json.loads(line), torch)
        except BaseException as error:  # noqa: BLE001 - every failure goes back as a reply
            causes = list(
                dict.fromkeys(
                    found
                    for message in collected.messages
                    for found in re.findall(r"^\w*(?:Error|Exception): .+$", message, re.MULTILINE)
                )
            )
            reply = {
                "ok": False,
                "error": "\n".join([f"{type(error).__name__}: {str(error).strip()}", *causes]),
            }
            traceback.print_exc()  # to stderr, which the plugin quotes if the process dies
        finally:
            for logger in loggers:
                logger.removeHandler(collected)
        protocol.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # the plugin's own modules must not shadow anything here
    main()

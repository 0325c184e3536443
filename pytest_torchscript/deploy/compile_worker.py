"""The fresh process of mode="compile": what a torch.compile deployment does when it starts.

It runs as a standalone script, once per check, with an empty Inductor cache (the plugin sets
``TORCHINDUCTOR_CACHE_DIR``), so whatever it does not compile from scratch comes from the cache
the check saved. It loads that cache (``torch.compiler.load_cache_artifacts``), unpickles the
model (its code importable, as it is in a deployment: the request carries pytest's sys.path),
compiles it with the check's options and runs every input set, timing each set's first call:
the warm compile time a deployment pays. One JSON reply line on stdout; the rest goes to stderr.
"""

import json
import os
import sys
import time
import traceback
import warnings


def main(request_path):
    with open(request_path) as handle:
        request = json.load(handle)
    sys.path[:0] = [entry for entry in request["sys_path"] if entry not in sys.path]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch

        with open(request["cache"], "rb") as handle:
            data = handle.read()
        loaded = {}
        if data:
            info = torch.compiler.load_cache_artifacts(data)
            artifacts = getattr(info, "artifacts", None) or {}
            loaded = {str(kind): len(keys) for kind, keys in artifacts.items()}
        # the plugin's own files, written for this process moments ago
        payload = torch.load(request["payload"], weights_only=False)
        input_sets = torch.load(request["inputs"], weights_only=False)
        device = request["device"]
        model = payload["model"].to(device).eval()
        compiled = torch.compile(model, **payload["options"])
        outputs, seconds = [], []
        with torch.no_grad():
            for args, kwargs in input_sets:
                args = [a.to(device) if isinstance(a, torch.Tensor) else a for a in args]
                kwargs = {
                    k: v.to(device) if isinstance(v, torch.Tensor) else v
                    for k, v in kwargs.items()
                }
                started = time.perf_counter()
                outputs.append(compiled(*args, **kwargs))
                seconds.append(time.perf_counter() - started)
        torch.save(outputs, request["outputs"])
    return {"ok": True, "pid": os.getpid(), "seconds": seconds, "cache_loaded": loaded}


if __name__ == "__main__":
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # the plugin's own modules must not shadow anything here
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a print() in forward: not the reply
    try:
        reply = main(sys.argv[1])
    except BaseException as error:  # noqa: BLE001 - every failure goes back as a reply
        traceback.print_exc()
        reply = {"ok": False, "error": f"{type(error).__name__}: {str(error).strip()}"}
    protocol.write(json.dumps(reply) + "\n")

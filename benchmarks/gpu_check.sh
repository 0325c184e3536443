#!/usr/bin/env bash
# Everything this project has to check on a GPU, in one call of at most 9 minutes (the steps'
# limits add up to 525 s; give the call 570).
#
# The CUDA paths are built and tested on CPU-only CI, where they cannot run; the device
# machine (when a task is lent one) is the only place they do, and its time is short, so the
# checks run as one prepared script, most important first, each under its own time limit so
# a slow step cannot starve the next:
#
#   1. example_project on the GPU, recording a baseline (every mode's conversion, parity, the
#      fresh-process and C++ round trips, the timings; AOTInductor's compile is left to step 3);
#   2. benchmarks/gate_quality.py --device cuda, recording every gate round by round (replay
#      them here with --replay, at no device time, to try changes to the gate on GPU data);
#   3. example_project gated against the baseline of step 1 (real models, nothing changed:
#      every regression is a false alarm), AOTInductor's check included;
#   4. benchmarks/timing_accuracy.py --device cuda (the reported latencies against Timer).
#
# What comes back (at most 8 files are fetched): summary.txt (every step's output, in order),
# cuda-baseline.json, example-report.json (step 3's report), gates.json (step 2's record) and
# gpu-clocks.csv (the GPU's clocks, utilisation and power every 250 ms during step 2).
#
# Run on the device machine, from the repository root (python3 there is the one with torch):
#   bash benchmarks/gpu_check.sh "$OUT"
set -u
out=${1:?give the folder to write into, e.g. "\$OUT"}
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=${PYTHON:-python3}
[[ $py == */* ]] && py=$(cd "$(dirname "$py")" && pwd)/$(basename "$py")  # the steps cd
root=$(pwd)
summary="$out/summary.txt"
export PYTHONUNBUFFERED=1

step() {  # step SECONDS TITLE COMMAND...: run one step under a limit, its output in summary.txt
    local limit=$1 title=$2 began=$SECONDS
    shift 2
    echo "=== $title ($(date -u +%H:%M:%S), limit ${limit}s): $*" >>"$summary"
    timeout "$limit" "$@" >>"$summary" 2>&1
    echo "=== exit $? after $((SECONDS - began)) s" >>"$summary"
}

{
    nvidia-smi -L
    "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
} >"$summary" 2>&1
# The plugin from this checkout; nothing can be fetched there, and everything else it needs
# (torch, pytest, pytest-benchmark, onnx, onnxruntime, torchvision, transformers) is installed.
step 30 install "$py" -m pip install --quiet --no-deps --no-build-isolation --no-index -e "$root"
if ! "$py" -c "import importlib.metadata as m, sys; sys.exit(not any(e.name == 'torchscript' for e in m.entry_points(group='pytest11')))"; then
    echo "=== not installed: loading the plugin from the checkout instead" >>"$summary"
    export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTEST_ADDOPTS="-p pytest_torchscript.plugin"
fi

cd "$root/example_project" || exit 1
step 150 "example_project on cuda, recording a baseline" \
    "$py" -m pytest -p no:xdist -p no:cacheprovider -q --ts-device=cuda --ts-require-device \
    --ts-baseline="$out/cuda-baseline.json" --ts-update-baseline -k "not aoti"
cd "$root" || exit 1
# The GPU's clocks while the gates are timed: a probe whose rounds spread (13-15% on the first
# H100 run) may be the SM clock ramping between host-bound and kernel-bound series.
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,utilization.gpu,power.draw \
    --format=csv,noheader -lms 250 >"$out/gpu-clocks.csv" 2>&1 &
sampler=$!
step 150 "gate_quality on cuda" \
    "$py" benchmarks/gate_quality.py --device cuda --trials 2 --record-gates "$out/gates.json"
kill "$sampler" 2>/dev/null
cd "$root/example_project" || exit 1
rm -f build/torchscript-report.json  # only this run's report goes back
step 150 "example_project on cuda, gated against that baseline" \
    "$py" -m pytest -p no:xdist -p no:cacheprovider -q --ts-device=cuda --ts-require-device \
    --ts-baseline="$out/cuda-baseline.json"
cp build/torchscript-report.json "$out/example-report.json" 2>/dev/null
cd "$root" || exit 1
step 45 "timing accuracy on cuda" "$py" benchmarks/timing_accuracy.py --repeats 1 --device cuda

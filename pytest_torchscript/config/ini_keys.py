"""What each ``ts_<option>`` ini key says in ``pytest --help`` and the configuration
reference: one line per per-check option that an ini file may set (``options.OPTION_SPECS``
holds the option itself; ``tests/test_docs.py`` checks that the two agree)."""

INI_HELP = {
    "ts_rtol": "default relative tolerance of torchscript parity checks (default: by dtype)",
    "ts_atol": "default absolute tolerance of torchscript parity checks (default: by dtype)",
    "ts_roundtrip": "default roundtrip option of torchscript checks: true, in-process or false",
    "ts_min_coverage": "fail checks whose input sets exercise less than this fraction (0-1) of "
    "the arms of data-dependent branches and loops (default: report only)",
    "ts_benchmark": "time eager vs converted modules in torchscript checks (default: true)",
    "ts_time_budget": "seconds of timing per torchscript check (default: 2)",
    "ts_max_slowdown": "fail checks whose converted module is more than this many times slower "
    "than eager (default: no limit)",
    "ts_max_regression": "fail checks whose converted/eager ratio or probe-normalised time grew "
    "by more than this fraction over the --ts-baseline entry (default: 0.05)",
    "ts_timeout": "seconds a torchscript check may take before it fails, naming its stage "
    "(default: no limit)",
    "ts_compile_options": "torch.compile keywords of mode='compile' checks, as JSON, e.g. "
    '{"backend": "aot_eager"} (default: Inductor)',
    "ts_max_graph_breaks": "fail mode='compile' checks with more graph breaks than this "
    "(default: reported only)",
    "ts_max_recompiles": "fail mode='compile' checks that recompile more often than this over "
    "their input sets (default: reported only)",
    "ts_max_graph_change": "fail checks whose converted graph changed in more operator counts "
    "than this since the --ts-baseline entry (default: changes are reported only)",
    "ts_tvm_target": "the TVM target of mode='tvm' checks: a target string ('llvm') or a JSON "
    'object ({"kind": "llvm", "mcpu": "skylake"}); default: llvm, or cuda on a GPU',
    "ts_known_hazards": "acknowledged trace hazards that should not warn, one per line: "
    "'file.py:LINE' or a library name",
}

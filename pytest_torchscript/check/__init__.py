"""One check, stage by stage: the ``torchscript`` fixture (``checker``), the pipeline over one
``CheckContext`` (``pipeline``) and its stages before the round trips: eager twice, convert,
parity on every input set, control-flow coverage, the frozen branch and the trace hazards."""

"""Timing and perf gates that hold on noisy machines: interleaved timing (``timing``), the
machine-speed probe (``probe``), statistics (``stats``), gate verdicts (``gates``,
``verdicts``), the committed baseline (``baseline``) and its graph fingerprints
(``graph_diff``), the pytest-benchmark bridge, and the check's timing stage (``stage``, which
calls ``run``)."""

"""What the user asks for: the ``--ts-*`` flags and ``ts_*`` ini keys (``settings``), the
options of one check from the marker, ``check()`` and ini (``options``, ``marks``), the device
(``devices``), and the configuration reference generated from them (``reference``).
Nothing here imports torch."""

"""Every view of a run's checks, all read from the same plain data (``CheckReport.to_dict()``,
so reports from xdist workers and from merged shards read the same): the terminal summary
(``terminal.py``), ``--ts-report`` JSON (``json_file.py``), the ``--ts-html`` page
(``html_page.py``), and ``pytest-torchscript merge`` for several runs (``merge.py``); what they
share (order, verdict counts, cells, number formats) is in ``cells.py``."""

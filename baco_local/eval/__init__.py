"""`baco eval`: the diversity-quality trade-off of routers and baselines, measured.

Modules, by responsibility:
- tasks: built-in prompt sets (package data) and NoveltyBench-style JSONL files;
- methods: routers with gamma sweeps and the baselines, as points (settings);
- runner: the unit of work (one prompt x one point -> k answers, scored, embedded);
- store: the resumable JSONL of records; pool: run units with an executor (here, N
  processes, Ray: baco_local.executors) and keep their records;
- metrics, metrics_lexical, metrics_semantic, quality: what is measured (pure numpy);
- aggregate: metric table, Coverage, Dominance, joint improvement (formulas there);
- coverage: plane arithmetic for many resamples at once; fixed-range and min-max axes;
- bootstrap, intervals: resampling prompts, every figure's interval, real differences;
- judge_check: does the judge rate broken answers lower (a check of its own spread);
- report, interval_report, plots: the terminal table, JSON, Markdown and PNG frontiers;
- plan: one evaluation from planning to the results folder.

Nothing is imported at package import time.
"""

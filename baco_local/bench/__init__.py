"""`baco bench`: speed and memory of a pair, measured as ratios within one run.

May import: the public API (`api`), `decoding` (the reference loop), `core`, `pairs`.
"""

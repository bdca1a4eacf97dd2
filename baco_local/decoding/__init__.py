"""The decode loops: they drive a loaded pair step by step and yield TokenEvents.

- `token_loop`: pairs that share one vocabulary; every token is routed and read by both.
- `scheduler`: when, where and with how many threads each model catches up.
- `reference`: the plain loop the fast one is measured and tested against.

May import: `core`, `pairs` (a loaded pair and its formats), `backend` types, `errors`.
Not `models` (the catalog), the CLI or the terminal app.
"""

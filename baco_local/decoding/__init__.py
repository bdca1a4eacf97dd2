"""The decode loops: they drive a loaded pair step by step and yield TokenEvents.

- `token_loop`: one answer on a pair that shares one vocabulary; every token is routed
  and read by both models (the fast path, exact seed replay).
- `batch_loop`: k answers decoded together, and every answer on a pair of two
  vocabularies; it runs a rule per answer (`token_rule`, `word_rule`), generators that
  ask through `requests` and act through `loop_context`; `answer` is one answer's state.
- `prompts`: each role's prompt (a long conversation fitted to the context) and the
  answer's stop strings, for both loops.
- `scheduler`, `thread_plan`: when, where and with how many threads models decode.
- `reference`: the plain loop the fast one is measured and tested against.

May import: `core`, `pairs` (a loaded pair and its formats), `backend` types, `errors`.
Not `models` (the catalog), the CLI, the server or the terminal app.
"""

"""The decode loops: they drive a loaded pair step by step and yield TokenEvents.

- `batch_loop`: every answer on a pair, decoded together, requests joining and leaving
  between steps; it runs a rule per answer (`token_rule`, `speculative_rule`,
  `word_rule`, `speculative_word_rule`, chosen by `rule_choice`), generators that ask
  through `requests`, served by `handlers`, and act through `loop_context`; `answer`
  is one answer's state and `handle` one request's, as its caller sees it;
  `requests_many` is what a request is.
- speculation: `draft_plan` (how long a run to draft), `draft_costs` (what decodes
  cost on this host, measured once and kept).
- `prompts`: each role's prompt (a long conversation fitted to the context) and the
  answer's stop strings.
- `scheduler`, `thread_plan`: when, where and with how many threads models decode.
- `reference`: the plain loop the fast one is measured and tested against.

May import: `core`, `pairs` (a loaded pair and its formats), `backend` types, `errors`.
Not `models` (the catalog), the CLI, the server or the terminal app.
"""

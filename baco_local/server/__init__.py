"""`baco serve`: an OpenAI-compatible HTTP server over one loaded pair.

app.py routes requests, protocol.py parses them into settings, responses.py shapes the
answers (JSON or server-sent events), errors.py turns every failure into an OpenAI-style
error body, model.py owns the pair (one generation at a time, a bounded queue), and
serving.py runs it under uvicorn. Starlette and uvicorn come with the `server` extra;
nothing here is imported until `baco serve` runs.

May import: `core` (settings, events, routers), `pairs.prompt_formats` (Message),
`errors`, Starlette and uvicorn; it is handed a loaded `Pair` (api.py) and calls only
its public methods. Not the CLI, the terminal app or llama_cpp.
"""

"""A base/aligned pair as loaded: both models, their prompt formats, their streams.

- `loading`: PairSpec (what to load) and LoadedPair (the models, formats and streams,
  with the vocabulary check).
- `prompt_formats`: how a conversation becomes prompt text for one model.
- `prompt_cache`: a fixed preamble's KV cache kept on disk between processes.

May import: `core`, `backend`, `errors`, `paths`, `files`. Not `decoding`, `models`,
the CLI or the terminal app.
"""

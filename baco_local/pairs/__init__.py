"""A base/aligned pair as loaded: both models, their prompt formats, their streams.

- `loading`: PairSpec (what to load) and LoadedPair (the models, formats and streams;
  one vocabulary, or two: a word-level pair).
- `prompt_formats`: how a conversation becomes prompt text for one model.
- `prompt_cache`: a fixed preamble's KV cache kept on disk between processes.
- `conversation_fit`: which turns of a long conversation still fit the context.

May import: `core`, `backend`, `errors`, `paths`, `files`. Not `decoding`, `models`,
the CLI or the terminal app.
"""

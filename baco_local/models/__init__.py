"""Getting models: the catalog of named pairs and the files behind it.

- `catalog_file`, `catalog`, `user_catalog`: models.toml files, read, merged, edited,
  and turned into a PairSpec.
- `storage`: where files are cached, how they are checked, the errors downloads end with.
- `downloads`, `hub_cache`, `hub_transfer`: resumable, verified downloads from the
  Hugging Face hub into its cache layout.
- `packaged`, `demo_weights`: model files shipped in registry packages (the demo extra),
  found and assembled offline.

May import: `pairs` (PairSpec, and the vocabulary check when adding a pair), `backend`,
`core` (router and format names), `errors`, `paths`, `files`. Not `decoding`, the
CLI or the terminal app.
"""

"""The pure core: what one decoding step computes, in numpy, with no I/O.

Routers (`routers`), sampling of one row or k rows (`sampling`), the base model's
uncertainty (`uncertainty`), token roles and word starts (`token_roles`), seeded draws
(`drawing`), UTF-8 safe text with stop strings (`text_stream`), joining text onto another
tokenizer's tokens (`handover`), keeping an in-context partner from copying its
preamble (`copy_guard`), the settings dataclasses (`settings`) and what a generation
produces (`events`).

May import: numpy, the standard library, and `baco_local.errors`. Never llama_cpp,
files, the network or the terminal: everything here is tested on tiny arrays.
"""

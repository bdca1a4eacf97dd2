"""Does a seeded request's answer depend on the requests decoded with it?

Each of 4 prompts (NoveltyBench's curated set) is answered alone, then inside
Pair.answer_all with 1, 3 and 7 other requests (other prompts, seeds, temperature and
lengths); prints, per case, whether the tokens are identical and where they first differ.

    .venv/bin/python scripts/replay_company.py              # the default pair
    .venv/bin/python scripts/replay_company.py GEMMA.gguf   # that base, in-context aligned
"""

import json
import sys
from pathlib import Path

from baco_local import Message, Pair, Request

PROMPTS = Path(__file__).resolve().parents[2] / "shared/data/noveltybench-curated.jsonl"


def request(rid: str, prompt: str, settings) -> Request:
    return Request(rid, (Message("user", prompt),), settings, ignore_end=True)


def main() -> None:
    lines = PROMPTS.read_text().splitlines() if PROMPTS.exists() else []
    prompts = [json.loads(line)["prompt"] for line in lines[:12]] or [
        f"Tell me a short story about a {thing}."
        for thing in "cat dog sea moon fox owl tree ship boat key map bell".split()
    ]
    kw = {"base": sys.argv[1], "aligned": "in-context"} if len(sys.argv) > 1 else {}
    with Pair.load(**kw) as pair:
        settings = pair.default_settings.with_changes(max_tokens=64)
        mine = [(p, settings.with_changes(seed=100 + i)) for i, p in enumerate(prompts[:4])]
        alone = [pair.generate(p, s, ignore_end=True) for p, s in mine]
        firsts = []
        for company in (1, 3, 7):
            others = [
                request(
                    f"o{j}",
                    prompts[4 + j],
                    settings.with_changes(seed=j, temperature=1.2, max_tokens=40 + 8 * j),
                )
                for j in range(company)
            ]
            for k, (prompt, s) in enumerate(mine):
                batch = [others[0], request("mine", prompt, s), *others[1:]]
                got = {f.request_id: f.result for f in pair.answer_all(batch)}["mine"]
                a, b = [t.id for t in alone[k].tokens], [t.id for t in got.tokens]
                first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
                firsts.append(first)
                print(
                    f"company {company}, prompt {k}: identical {a == b}, first differs at {first}"
                )
        same = sum(f is None for f in firsts)
        print(f"{pair.label}: {same} of {len(firsts)} identical to the answer alone")


if __name__ == "__main__":
    main()

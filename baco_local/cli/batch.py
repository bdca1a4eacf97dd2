"""`baco batch PROMPTS.jsonl --out ANSWERS.jsonl`: every prompt of a file, answered in one
batch on one loaded pair, each answer appended to the output as it ends.

Rerunning the same command continues where it stopped (answers already in --out are not
written again); Ctrl-C keeps every finished answer. A bad input line is reported by its
number and skipped (--strict: nothing runs).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..errors import BacoError, PromptError
from ..executors import Report
from . import common


def register(commands) -> None:
    parser = commands.add_parser(
        "batch",
        help="answer every prompt of a JSON Lines file, in one batch",
        description='Answer each line of PROMPTS (a JSON Lines file: {"id": ..., '
        '"prompt": ...} or {"id": ..., "messages": [...]}, with any setting below as a '
        'field to override it for that line, and "n") and append one JSON line per answer '
        "to --out as it ends. Rerun the same command to continue a stopped run.",
    )
    parser.add_argument("prompts", metavar="PROMPTS", help="the prompts file (JSON Lines)")
    common.add_pair_options(parser)
    common.add_generation_options(parser)
    out = parser.add_argument_group("output")
    out.add_argument(
        "--out", "-o", required=True, metavar="FILE", help="the answers file (JSON Lines)"
    )
    out.add_argument(
        "-n",
        "--n",
        type=int,
        default=1,
        metavar="K",
        help='answers per line (seeds seed, seed+1, ...), unless the line says "n"',
    )
    out.add_argument("--system", metavar="TEXT", help="system prompt for lines without one")
    out.add_argument(
        "--raw", action="store_true", help="plain completion: feed each prompt unchanged"
    )
    common.add_cluster_options(parser, "answer")
    out.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="answer in N worker processes (with --ray: N Ray actors; default: as many as "
        "the cluster holds), each loading the pair once and answering shares of the file "
        "in one batch (default: this process alone)",
    )
    out.add_argument(
        "--strict",
        action="store_true",
        help="stop before answering anything when a line is malformed (default: skip it)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..batch.answers_file import AnswersFile
    from ..batch.prompts_file import Defaults, LineError, read_requests

    common.check_cluster_options(args)

    settings = common.generation_settings_from(args)  # validate before the slow load
    if args.n < 1:
        raise PromptError(f"--n {args.n} asks for no answers.", "use --n 1 or more")
    prompts, out = Path(args.prompts), Path(args.out)
    if out.resolve() == prompts.resolve():
        raise BacoError("--out is the prompts file.", "write the answers to another file")
    # Every line is checked before the pair loads: a typo costs no load time.
    defaults = Defaults(settings, args.n, args.raw, args.system)
    items = list(read_requests(prompts, defaults))
    errors = [item for item in items if isinstance(item, LineError)]
    for error in errors:
        sys.stderr.write(f"baco batch: {prompts}: {error}\n")
    if errors and args.strict:
        raise PromptError(
            f"{len(errors)} line{'s' if len(errors) > 1 else ''} of {prompts} cannot be used "
            "(see above).",
            "fix them, or drop --strict to skip them",
        )
    requests = [item for item in items if not isinstance(item, LineError)]
    if not requests:
        raise PromptError(
            f"{prompts} has no prompts to answer.", 'write lines like {"id": 1, "prompt": "..."}'
        )

    answers = AnswersFile.open(out)
    defaults = replace(defaults, seeds=answers.seeds)  # lines without a seed continue
    try:
        todo = _still_to_do(requests, answers)
        total = sum(r.n for r in requests)
        left = total - _written(requests, answers)
        if not todo:
            # Nothing to add, but a rerun with changed options expects new answers: say
            # that these were made otherwise rather than that all is done.
            recommended = common.settings_for_spec(args, common.recommended_spec_from(args))
            _check_continuation(_read_with(prompts, defaults, recommended), answers, None)
            sys.stderr.write(f"all {total} answers are already in {out}\n")
            return 0
        if left < total:
            sys.stderr.write(
                f"continuing: {total - left} of {total} answers are already in {out}\n"
            )
        unanswerable: set[str] = set()  # ids of the lines the pair could not answer
        if args.ray is not None or (args.workers or 1) > 1:
            stopped = _answer_in_workers(args, prompts, defaults, answers, left, unanswerable)
        else:
            stopped = _answer_here(args, prompts, defaults, answers, left, unanswerable)
    finally:
        answers.close()
    done = _written(requests, answers)
    if stopped:
        sys.stderr.write(
            f"stopped: {done} of {total} answers are in {out}; run the same command again "
            "to continue\n"
        )
        return 130
    total -= sum(r.n for r in requests if r.id in unanswerable)
    skipped = len(errors) + len(unanswerable)
    skipped_note = f", {skipped} line(s) skipped" if skipped else ""
    sys.stderr.write(f"done: {done} of {total} answers in {out}{skipped_note}\n")
    return 0 if done >= total else 1


def _read_with(prompts, defaults, recommended) -> list:
    """The lines again, over the pair's recommended settings where the command left them
    at their defaults (a line's own fields still win)."""
    from ..batch.prompts_file import LineError, read_requests

    again = read_requests(prompts, replace(defaults, settings=recommended))
    return [r for r in again if not isinstance(r, LineError)]


def _todo_for(prompts, defaults, answers, recommended):
    """The lines as they will be answered (see _read_with), less what is written."""
    return _still_to_do(_read_with(prompts, defaults, recommended), answers)


def _answer_here(args, prompts, defaults, answers, left: int, unanswerable: set) -> bool:
    """Load the pair here and answer everything in one batch; True when Ctrl-C stopped it.
    The ids of lines the pair cannot answer go to `unanswerable`."""
    pair = common.load_pair_from(args)
    try:
        todo = _todo_for(prompts, defaults, answers, common.settings_for_pair(args, pair))
        _check_continuation(todo, answers, pair.label)
        if args.strict:
            _check_answerable(pair, todo)
        for note in pair.notes:
            sys.stderr.write(f"note: {note}\n")
        skipped: list = []
        finished = pair.answer_all(todo, on_error=lambda r, e: skipped.append((r, e)))

        def events():
            for item in finished:
                while skipped:
                    request, error = skipped.pop()
                    yield Report(0, "skipped", {"id": request.id, "message": error.message})
                if item.result.finish_reason != "cancelled":  # a rerun writes it whole
                    answer = {"id": item.request_id, "answer": item.answer}
                    yield Report(0, "answer", {**answer, "result": item.result.to_dict()})
            for request, error in skipped:
                yield Report(0, "skipped", {"id": request.id, "message": error.message})

        try:
            return _write_answers(events(), answers, left, "answering", unanswerable, False)
        finally:
            finished.close()  # stops the answers still running
    finally:
        pair.close()


def _check_continuation(todo, answers, pair_label: str | None) -> None:
    """Refuse to add answers to a line whose answers in the file were made with other
    settings or another pair (a rerun with changed options would mix them silently)."""
    for request in todo:
        difference = answers.difference(request, pair_label)
        if difference:
            raise PromptError(
                f"{answers.path} holds answers to the line with id {request.id!r}, made "
                f"with other settings ({difference}).",
                "rerun with the options of the run that wrote them, or give a new --out",
            )


def _check_answerable(pair, todo) -> None:
    """--strict: every line must be one this pair can answer, before any is answered."""
    bad = 0
    for request in todo:
        try:
            pair.check(request)
        except BacoError as error:
            hint = f" ({error.hint})" if error.hint else ""
            sys.stderr.write(f"baco batch: id {request.id!r}: {error.message}{hint}\n")
            bad += 1
    if bad:
        raise PromptError(
            f"{bad} line{'s' if bad > 1 else ''} cannot be answered by this pair (see above).",
            "fix them, or drop --strict to skip them",
        )


def _answer_in_workers(args, prompts, defaults, answers, left: int, unanswerable: set) -> bool:
    """Answer in shares on worker processes or Ray actors (each loads the pair once, on
    its node); this process alone writes the answers file."""
    from ..batch.job import batch_job, pair_config, shares
    from ..executors import make_executor

    spec = common.recommended_spec_from(args)
    todo = _todo_for(prompts, defaults, answers, common.settings_for_spec(args, spec))
    _check_continuation(todo, answers, None)
    load = common.load_settings_from(args)
    if args.ray is None:  # the machine's cores, shared out
        load = replace(load, n_threads=common.worker_threads(args.threads, args.workers))
    # what the files of a catalog pair are called here, when they are here: a node that
    # finds others (the demo fallback) refuses rather than mixes
    here = args.base is None and Path(str(spec.base)).exists()
    config = pair_config(
        args.pair, args.base, args.aligned, args.base_format, args.aligned_format, load,
        expect=spec.model_files() if here else None,
    )  # fmt: skip
    executor = make_executor(args.workers, args.ray, args.threads)
    units = shares(todo, load.n_parallel)
    reports = executor.run(batch_job(config), units)
    try:
        return _write_answers(reports, answers, left, "loading", unanswerable, args.strict)
    finally:
        reports.close()


def _written(requests, answers) -> int:
    """How many of the requests' answers the answers file holds."""
    return sum(answers.has(r.id, i) for r in requests for i in range(r.n))


def _still_to_do(requests, answers):
    """Each request from its first answer not yet written (answers after it that were
    written are decoded again but not written twice)."""
    todo = []
    for request in requests:
        missing = [i for i in range(request.n) if not answers.has(request.id, i)]
        if missing:
            todo.append(replace(request, first_answer=missing[0]))
    return todo


def _write_answers(reports, answers, left: int, status: str, unanswerable, strict) -> bool:
    """Write each answer the reports bring (once), with progress; True when Ctrl-C
    stopped it. The ids of lines the pair cannot answer go to `unanswerable` (with
    `strict`, the first one stops the run: workers find them as they go)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("answers"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    started = time.perf_counter()
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task(status, total=left, rate="")
        say = progress.console.print
        written = loaded = 0
        try:
            for report in reports:
                data = report.data
                if report.kind == "answer" and not answers.has(data["id"], data["answer"]):
                    answers.write_record(data["id"], data["answer"], data["result"])
                    written += 1
                    rate = written / max(time.perf_counter() - started, 1e-9)
                    progress.update(bar, advance=1, rate=f"{rate:.2f} answers/s")
                elif report.kind == "skipped":
                    if strict:
                        raise PromptError(
                            f"the line with id {data['id']!r} cannot be answered by this pair: "
                            f"{data['message']}",
                            "fix it, or drop --strict to skip such lines",
                        )
                    unanswerable.add(data["id"])
                    say(f"id {data['id']!r}: {data['message']} (skipped)", soft_wrap=True)
                elif report.kind == "loaded":
                    say(f"loaded: {data['where']}")
                    for note in data["notes"] if not written and not loaded else ():
                        say(f"note: {note}")
                    loaded += 1
                    started = time.perf_counter() if not written else started
                    progress.update(bar, description="answering")
                elif report.kind == "started":
                    say(f"Ray: joined in {data:.1f} s")
                elif report.kind == "news":
                    say(data)
                elif report.kind == "retry":
                    say(f"share {report.unit}: answering again on another actor: {data}")
        except KeyboardInterrupt:  # every answer written is whole
            return True
    return False

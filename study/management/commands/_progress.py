"""Progress output for long-running commands: a tqdm bar on a terminal, plain lines (with rate and ETA) otherwise."""

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable

from django.core.management.base import CommandError
from tqdm import tqdm

logger = logging.getLogger(__name__)

MAX_BATCH_SIZE = 100_000  # the rows (or file names) of one statement in a batched command: more only costs memory


def progress_shown(stdout, verbosity: int) -> str:
    """How a command shows its progress: "bar" (tqdm, on a terminal), "lines" (plain lines with the rate, into a
    file or a pipe) or "none" (`-v 0`)."""
    if verbosity < 1:
        return "none"
    return "bar" if stdout.isatty() else "lines"


class Progress:
    """Call `step(message)` once per item; `close()` at the end. Silent at verbosity 0 (`-v 0`)."""

    def __init__(self, *, stdout, total: int, desc: str, verbosity: int = 1) -> None:
        self.stdout = stdout
        self.total = total
        self.done = 0
        shown = progress_shown(stdout, verbosity)
        self.quiet = shown == "none"
        self.started = time.monotonic()
        self.bar = tqdm(total=total, desc=desc, file=stdout._out, unit="item") if shown == "bar" else None

    def step(self, message: str) -> None:
        self.done += 1
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(message[:60], refresh=False)
            self.bar.update(1)
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate else 0
        self.stdout.write(f"[{self.done}/{self.total}] {message} ({rate:.1f}/s, eta {eta:.0f}s)")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class RowProgress:
    """Progress of a command that works through `total` rows in batches: `update(rows)` after each batch (a tqdm bar
    on a terminal, a line with the rate and ETA otherwise, nothing when `shown` is "none"); `close()` at the end."""

    def __init__(self, *, stdout, total: int, label: str, shown: str) -> None:
        self.stdout, self.total, self.label, self.shown = stdout, total, label, shown
        self.done = 0
        self.started = time.monotonic()
        self.bar = tqdm(total=total, desc=label, unit="rows", file=stdout._out, disable=shown != "bar")

    def update(self, rows: int) -> None:
        self.done += rows
        self.bar.update(rows)
        if self.shown == "lines":
            rate = self.done / max(time.monotonic() - self.started, 1e-6)
            eta = max(self.total - self.done, 0) / rate if rate else 0
            self.stdout.write(f"{self.label}: {self.done}/{self.total} rows ({rate:.0f} rows/s, eta {eta:.0f}s)")

    def close(self) -> None:
        self.bar.close()


MAX_IDS_NAMED = 10  # the ids a failure message lists; the rest are counted


def run_each(command, ids: Iterable[int], *, label: str, run: Callable[[int], str], verbosity: int = 1,
             failed_outcome: str | None = None) -> None:
    """Run `run(id)` for every id with progress output, then print how many ended with each outcome (neither at
    verbosity 0).

    An item that raises is an `error` (its traceback logged) and the others still run; the command then fails
    (CommandError: a non-zero exit status) with the same summary, whatever the verbosity. Items whose outcome is
    `failed_outcome` fail the command too, once all ran and the summary is printed: the message counts them and
    names their ids (the first MAX_IDS_NAMED).
    """
    ids = list(ids)
    outcomes: Counter[str] = Counter()
    failed_ids: list[int] = []
    progress = Progress(stdout=command.stdout, total=len(ids), desc=label, verbosity=verbosity)
    for item_id in ids:
        try:
            outcome = run(item_id)
        except Exception as exc:  # one bad item must not leave the rest undone
            logger.exception("%s %s failed", label, item_id)
            command.stderr.write(f"{label} {item_id}: {type(exc).__name__}: {exc}")
            outcome = "error"
        outcomes[outcome] += 1
        if failed_outcome is not None and outcome == failed_outcome:
            failed_ids.append(item_id)
        progress.step(f"{label} {item_id}: {outcome}")
    progress.close()
    summary = ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items())) or "nothing to do"
    name = command.__module__.rsplit(".", 1)[-1]
    failed = ""
    if failed_ids:
        named = ", ".join(str(item_id) for item_id in failed_ids[:MAX_IDS_NAMED])
        more = f" and {len(failed_ids) - MAX_IDS_NAMED} more" if len(failed_ids) > MAX_IDS_NAMED else ""
        failed = f"{len(failed_ids)} {label}(s) ended {failed_outcome}: {named}{more}"
    if outcomes["error"]:
        raise CommandError(f"{name}: {summary}" + (f"; {failed}" if failed else ""))
    if verbosity >= 1:
        style = command.style.WARNING if failed else command.style.SUCCESS
        command.stdout.write(style(f"{name}: {summary}"))
    if failed:
        raise CommandError(f"{name}: {failed}")


def send_now(task, item_id: int, *, if_refused: str = "") -> str:
    """Send `task(item_id)` to the workers at once (a command runs outside any transaction, so there is no commit
    to wait for): "queued", or a CommandError that `run_each` counts as this item's error."""
    try:
        task.apply_async(args=[item_id])
    except Exception as exc:  # the broker refused or did not answer
        raise CommandError(f"not queued ({type(exc).__name__}: {exc}){if_refused}") from exc
    return "queued"

"""Progress output for long-running commands: a tqdm bar on a terminal, plain lines (with rate and ETA) otherwise."""

import time

from tqdm import tqdm


class Progress:
    """Call `step(message)` once per item; `close()` at the end."""

    def __init__(self, *, stdout, total: int, desc: str) -> None:
        self.stdout = stdout
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.bar = tqdm(total=total, desc=desc, file=stdout._out, unit="item") if stdout.isatty() else None

    def step(self, message: str) -> None:
        self.done += 1
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

"""Timing an implementation: the minimum over repeats after one checked warm-up call."""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

from .checks import WrongResult

#: a row's note starts with this when its check rejected the result (the row has no time)
WRONG_RESULT = "wrong result"


@dataclass
class Row:
    benchmark: str
    implementation: str
    device: str
    role: str  # "kernel" (fastgeo), "reference", "copy"
    items: int | None = None  # items measured (rows, queries, paths)
    bytes: int | None = None  # least traffic of the measured call
    seconds: float | None = None  # minimum over repeats
    note: str = ""
    items_per_s: float | None = None
    gb_per_s: float | None = None
    fraction_of_copy: float | None = None
    speedup: dict = field(default_factory=dict)  # reference implementation -> x faster
    extra: dict = field(default_factory=dict)  # benchmark-specific figures (e.g. the solver overhead)


def short_reason(err) -> str:
    """``Type: message`` on one line, at most 160 characters of message."""
    return f"{type(err).__name__}: {' '.join(str(err).split())[:160] or type(err).__name__}"


class Runner:
    def __init__(self, repeats=5, budget_s=1.0, progress=True, stream=None):
        self.repeats = repeats
        self.budget_s = budget_s
        self.progress = progress
        self.stream = stream or sys.stderr
        self.rows: list[Row] = []

    def say(self, text):
        if self.progress:
            print(text, file=self.stream, flush=True)

    def time(self, call, device, check=None):
        """The minimum time of ``call`` over the repeats, after a warm-up call (compilation,
        caches, allocator) whose result ``check`` (if given) must accept."""
        device.sync()
        result = call()
        device.sync()
        if check is not None:
            check(result)
        del result
        best = math.inf
        for _ in range(self.repeats):
            t0 = time.perf_counter()
            call()
            device.sync()
            best = min(best, time.perf_counter() - t0)
        return best

    def skip(self, benchmark, implementation, device, role, err):
        """Record a row without a time: a wrong result (WrongResult) or a call that cannot
        run here (any other exception), with the reason."""
        kind = WRONG_RESULT if isinstance(err, WrongResult) else "skipped"
        reason = str(err) if isinstance(err, WrongResult) else short_reason(err)
        self.say(f"  {benchmark} | {implementation} ({device.name}): {kind} ({reason})")
        row = Row(benchmark, implementation, device.name, role, note=f"{kind}: {reason}")
        self.rows.append(row)
        return row

    def measure(self, benchmark, implementation, device, role, make_call, items, bytes_per_item=0,
                scalable=False, note="", check=None):
        """Time make_call(n)() on n <= items items; a row (or a row without a time saying why).

        scalable: the call may run on a prefix, chosen so one call takes about budget_s / repeats.
        check: called once with the warm-up call's result; raises WrongResult if it is wrong.
        """
        n = items
        try:
            if scalable and items > 1:
                probe = min(items, 256)
                call = make_call(probe)
                call()
                device.sync()
                t0 = time.perf_counter()
                call()
                device.sync()
                per_item = (time.perf_counter() - t0) / probe
                n = int(min(items, max(probe, self.budget_s / max(self.repeats, 1) / max(per_item, 1e-12))))
            seconds = self.time(make_call(n), device, check)
        except Exception as err:  # an implementation that cannot run here is reported, not fatal
            return self.skip(benchmark, implementation, device, role, err)
        row = Row(benchmark, implementation, device.name, role, items=n, bytes=int(bytes_per_item * n),
                  seconds=seconds, note=note + ("" if n == items else f"{'; ' if note else ''}measured on {n} of {items}"))
        self.say(f"  {benchmark} | {implementation} ({device.name}): {seconds * 1e3:.3f} ms"
                 + (f" on {n} items" if n != items else ""))
        self.rows.append(row)
        return row

    def wrong_results(self):
        """The rows whose check rejected their result."""
        return [row for row in self.rows if row.note.startswith(WRONG_RESULT)]

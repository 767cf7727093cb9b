"""Plans: the steps a task will take, as data. ``--dry-run`` prints the same Plan a real run executes."""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterator

from .runner import Command, Masker


@dataclass(frozen=True)
class Step:
    """One thing a plan does: what people read, and the action that does it."""

    description: str
    action: Callable[[], Any] | None = field(default=None, compare=False, repr=False)
    command: Command | None = None
    details: tuple[str, ...] = ()

    def lines(self, mask: Masker | None = None) -> list[str]:
        out = [self.description]
        if self.command is not None:
            out.append(f"    $ {self.command.display(mask)}")
        out += [f"    {d}" for d in self.details]
        return out


@dataclass(frozen=True)
class Plan:
    title: str
    steps: tuple[Step, ...]

    def render(self, mask: Masker | None = None) -> str:
        lines = [self.title]
        for n, step in enumerate(self.steps, 1):
            first, *rest = step.lines(mask)
            lines.append(f"  {n}. {first}")
            lines += [f"  {r}" for r in rest]
        return "\n".join(lines)


@dataclass(frozen=True)
class StepTiming:
    """How long one executed step took, and whether it finished (``--json`` reports these)."""

    step: str
    seconds: float
    ok: bool


# Set only while a caller records timings (``inv deploy --json``), so the services keep their signatures.
_timings: ContextVar[list[StepTiming] | None] = ContextVar("dockyard_step_timings", default=None)


@contextmanager
def recording_timings() -> Iterator[list[StepTiming]]:
    """Collect a :class:`StepTiming` for every step :func:`execute` runs inside the ``with`` block."""
    found: list[StepTiming] = []
    token = _timings.set(found)
    try:
        yield found
    finally:
        _timings.reset(token)


def execute(
    plan: Plan,
    *,
    dry_run: bool = False,
    mask: Masker | None = None,
    stream: IO[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[Any]:
    """Print the plan (dry run) or run each step with a progress line; returns each step's result."""
    out = stream or sys.stdout
    if dry_run:
        print(plan.render(mask), file=out)
        print("(dry run: nothing was changed)", file=out)
        return []
    results = []
    total = len(plan.steps)
    for n, step in enumerate(plan.steps, 1):
        started = clock()
        print(f"[{n}/{total}] {step.description}", file=out, flush=True)
        record = _timings.get()
        try:
            results.append(step.action() if step.action else None)
        except BaseException:
            if record is not None:
                record.append(StepTiming(step.description, round(clock() - started, 3), False))
            raise
        elapsed = clock() - started
        if record is not None:
            record.append(StepTiming(step.description, round(elapsed, 3), True))
        if elapsed >= 1:
            print(f"      done in {elapsed:.1f}s", file=out, flush=True)
    return results

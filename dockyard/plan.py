"""Plans: the steps a task will take, as data. ``--dry-run`` prints the same Plan a real run executes.

A :class:`Step` holds an instruction that says what is done, never how: a local :class:`~dockyard.runner.Command`
(:class:`RunCommand`), a call of a client's operation with its parameters (:class:`ApiCall`), or a remote script
with its positional values (:class:`RemoteScript`). :func:`run_plan` is the one executor: it hands each
instruction to the performer registered for it (a client, a lock, a waiter: the clients stay the only I/O) and
returns each step's output and timing. :func:`display` prints the same plan; :func:`execute` is either. A value
an earlier step produced (a request id, a registered revision) is named by that step's ``output`` and referenced
by later steps as :class:`Output`; conditions are decided when the plan is built, so a step that will not run is
not in the plan.
"""
from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import IO, Any, Union

from .runner import MASK, Command, Masker


@dataclass(frozen=True)
class Output:
    """The value an earlier step produced under ``name`` (or one attribute of it), resolved when the step runs."""

    name: str
    attribute: str = ""

    def resolve(self, outputs: Mapping[str, Any]) -> Any:
        if self.name not in outputs:
            raise KeyError(f"no earlier step produced {self.name!r}")
        value = outputs[self.name]
        return getattr(value, self.attribute) if self.attribute else value

    def __str__(self) -> str:
        return f"<{self.name}{'.' + self.attribute if self.attribute else ''}>"


def _resolve(value: Any, outputs: Mapping[str, Any]) -> Any:
    if isinstance(value, Output):
        return value.resolve(outputs)
    if isinstance(value, tuple):
        return tuple(_resolve(v, outputs) for v in value)
    if isinstance(value, frozenset):
        return frozenset(_resolve(v, outputs) for v in value)
    return value


def _shown(value: Any) -> str:
    if isinstance(value, Output):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (tuple, frozenset)):
        items = sorted(value, key=str) if isinstance(value, frozenset) else value
        return "(" + ", ".join(_shown(v) for v in items) + ("," if len(items) == 1 else "") + ")"
    if hasattr(value, "display_value"):
        return value.display_value()
    if isinstance(value, PurePath):
        return repr(str(value))
    if isinstance(value, str) and "\n" in value:
        return f"<{len(value.splitlines())} lines>"  # a message: its step lists the lines
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    return f"<{type(value).__name__}>"  # a structured value (a task definition): its step's description says it


@dataclass(frozen=True)
class ApiCall:
    """``service.operation(**params)``: the performer registered as ``service`` does it.

    ``secret`` names the parameters whose values are never shown. Parameters are kept in the order given.
    """

    service: str
    operation: str
    params: tuple[tuple[str, Any], ...] = ()
    secret: frozenset[str] = frozenset()
    output: str = ""

    @classmethod
    def of(cls, service: str, operation: str, /, *, output: str = "", secret: tuple[str, ...] = (),
           **params: Any) -> ApiCall:
        return cls(service, operation, tuple(params.items()), frozenset(secret), output)

    @property
    def arguments(self) -> dict[str, Any]:
        return dict(self.params)

    def display(self, mask: Masker | None = None) -> str:
        shown = ", ".join(f"{k}={MASK if k in self.secret else _shown(v)}" for k, v in self.params)
        text = f"{self.service}.{self.operation}({shown})" + (f" -> {Output(self.output)}" if self.output else "")
        return mask(text) if mask else text

    def perform(self, performers: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
        operation = getattr(performers[self.service], self.operation)
        return operation(**{k: _resolve(v, outputs) for k, v in self.params})


@dataclass(frozen=True)
class RunCommand:
    """A command run on this machine by the ``local`` performer (a :class:`~dockyard.runner.Runner`)."""

    command: Command
    output: str = ""

    def display(self, mask: Masker | None = None) -> str:
        return f"$ {self.command.display(mask)}"

    def perform(self, performers: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
        return performers["local"].run(self.command)


@dataclass(frozen=True)
class RemoteScript:
    """A script run on ``host`` (a performer with ``run(Command)``), its values passed as positional parameters."""

    host: str
    script: str
    args: tuple[str, ...] = ()
    output: str = ""

    @property
    def command(self) -> Command:
        return Command(("sh", "-c", self.script, "sh", *self.args))

    def display(self, mask: Masker | None = None) -> str:
        return f"{self.host}$ {self.command.display(mask)}"

    def perform(self, performers: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
        return performers[self.host].run(self.command)


Instruction = Union[ApiCall, RunCommand, RemoteScript]  # noqa: UP007 - a runtime alias


class WithArguments:
    """A performer whose named operations also receive fixed keyword arguments: how an operation reports
    (``say``) is not part of what the plan does, so it is not in the plan. ``WithArguments(lock, acquire={...})``."""

    def __init__(self, target: Any, **operations: Mapping[str, Any]) -> None:
        self._target = target
        self._operations = operations

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self._target, name)
        fixed = self._operations.get(name)
        return functools.partial(operation, **fixed) if fixed else operation


@dataclass(frozen=True)
class Step:
    """One thing a plan does: what people read, and the instruction that does it (data, compared by value).

    ``command`` shows the command an operation runs, where that says more than the call (``docker push …``).
    """

    description: str
    instruction: Instruction | None = None
    command: Command | None = None
    details: tuple[str, ...] = ()

    def lines(self, mask: Masker | None = None) -> list[str]:
        out = [self.description]
        if self.instruction is not None:
            out.append(f"    {self.instruction.display(mask)}")
        if self.command is not None:
            out.append(f"    $ {self.command.display(mask)}")
        out += [f"    {d}" for d in self.details]
        return out


@dataclass(frozen=True)
class Plan:
    title: str
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()  # what was decided not to do, and why (said by the run and the dry run alike)

    def render(self, mask: Masker | None = None) -> str:
        lines = [self.title] + [f"  ({mask(n) if mask else n})" for n in self.notes]
        for n, step in enumerate(self.steps, 1):
            first, *rest = step.lines(mask)
            lines.append(f"  {n}. {first}")
            lines += [f"  {r}" for r in rest]
        return "\n".join(lines)

    @property
    def descriptions(self) -> tuple[str, ...]:
        return tuple(s.description for s in self.steps)


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
    """Collect a :class:`StepTiming` for every step :func:`run_plan` runs inside the ``with`` block."""
    found: list[StepTiming] = []
    token = _timings.set(found)
    try:
        yield found
    finally:
        _timings.reset(token)


@dataclass
class PlanRun:
    """What one execution produced: each step's named output, and how long each step took."""

    outputs: dict[str, Any] = field(default_factory=dict)
    results: list[Any] = field(default_factory=list)
    timings: list[StepTiming] = field(default_factory=list)


def display(plan: Plan, *, mask: Masker | None = None, stream: IO[str] | None = None) -> None:
    """The display executor: print the plan's steps, change nothing."""
    out = stream or sys.stdout
    print(plan.render(mask), file=out)
    print("(dry run: nothing was changed)", file=out)


def run_plan(
    plan: Plan,
    performers: Mapping[str, Any] | None = None,
    *,
    mask: Masker | None = None,
    stream: IO[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    into: PlanRun | None = None,
    on_step: Callable[[int, int, str], None] | None = None,
) -> PlanRun:
    """The executor: each step with a progress line (``[n/N] description``), its instruction to its performer.

    ``into`` is filled as the steps run, so a caller whose plan failed still sees what the earlier steps produced.
    ``on_step(n, N, description)`` is told of each step before it runs (a deploy journal records it).
    """
    out = stream or sys.stdout
    performers = performers or {}
    run = into if into is not None else PlanRun()
    total = len(plan.steps)
    for note in plan.notes:
        print(f"  {mask(note) if mask else note}", file=out, flush=True)
    record = _timings.get()
    for n, step in enumerate(plan.steps, 1):
        started = clock()
        print(f"[{n}/{total}] {step.description}", file=out, flush=True)
        if on_step is not None:
            on_step(n, total, mask(step.description) if mask else step.description)
        ok = False
        try:
            result = None
            if step.instruction is not None:
                result = step.instruction.perform(performers, run.outputs)
                if step.instruction.output:
                    run.outputs[step.instruction.output] = result
            run.results.append(result)
            ok = True
        finally:
            elapsed = clock() - started
            timing = StepTiming(step.description, round(elapsed, 3), ok)
            run.timings.append(timing)
            if record is not None:
                record.append(timing)
        if elapsed >= 1:
            print(f"      done in {elapsed:.1f}s", file=out, flush=True)
    return run


def execute(
    plan: Plan,
    *,
    dry_run: bool = False,
    mask: Masker | None = None,
    stream: IO[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    performers: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Print the plan (dry run) or run it; returns each step's result."""
    if dry_run:
        display(plan, mask=mask, stream=stream)
        return []
    return run_plan(plan, performers, mask=mask, stream=stream, clock=clock).results

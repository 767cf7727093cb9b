"""The ``inv`` lines a CI pipeline runs, bound to the project's own tasks and flags (never hand-written strings).

A configured entry (``dockyard.ci.staging_tasks`` / ``release_tasks``) names a task and what to pass it:
``"deploy {version} --env prod"``. A bare placeholder such as ``{version}`` is bound to the task's argument of that
name, so it becomes ``--version "$DOCKYARD_VERSION"`` for a task whose ``version`` is a flag and a positional
value for one whose ``version`` is positional. Every bound line is then parsed by Invoke's own parser against the
project's collection: an unknown task, an unknown flag, a missing positional argument or a stray word is refused
before any CI file is written.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ..dispatch import VERBS
from ..errors import ConfigError, DockyardError

_PLACEHOLDER = re.compile(r"^\{([a-z_]+)\}$")


@dataclass(frozen=True)
class Placeholder:
    """A value the pipeline knows only when it runs: a shell variable, and a sample value to check the line with."""

    name: str
    variable: str
    sample: str


@dataclass(frozen=True)
class Invocation:
    """One ``inv`` call: the task and its words, each a literal or a :class:`Placeholder`."""

    task: str
    words: tuple[str | Placeholder, ...]
    env_values: tuple[str, ...] = ()  # environment names this call acts on (its collection, --env, a positional env)

    def shell(self) -> str:
        """The line as a shell command: literals quoted once, placeholders as double-quoted variables."""
        parts = ["inv", shlex.quote(self.task)]
        for word in self.words:
            parts.append(f'"${word.variable}"' if isinstance(word, Placeholder) else shlex.quote(word))
        return " ".join(parts)

    def sample_argv(self) -> list[str]:
        return [self.task, *(w.sample if isinstance(w, Placeholder) else w for w in self.words)]


def split_entry(entry: str, key: str) -> list[str]:
    try:
        words = shlex.split(entry)
    except ValueError as exc:
        raise ConfigError(f"dockyard.ci.{key}: cannot read {entry!r} ({exc})") from None
    if not words:
        raise ConfigError(f"dockyard.ci.{key}: an empty entry; name a task (see `inv --list`)")
    return words


def task_names(collection: Any) -> set[str]:
    """Every task name and alias ``inv`` accepts in this collection."""
    names = set(collection.task_names)
    names.update(alias for aliases in collection.task_names.values() for alias in aliases)
    return names


def parser_contexts(collection: Any) -> list[Any]:
    """``collection.to_contexts()`` without its side effect: Invoke pops each task's help text while building
    the arguments, and the same task objects serve every later ``inv --help`` in this process."""
    tasks = [collection[name] for name in collection.task_names]
    saved = [(t, dict(t.help)) for t in tasks]
    try:
        return collection.to_contexts()
    finally:
        for t, help_texts in saved:
            t.help = help_texts


def _contexts(collection: Any) -> dict[str, Any]:
    contexts = {}
    for ctx in parser_contexts(collection):
        contexts[ctx.name] = ctx
        for alias in ctx.aliases:
            contexts[alias] = ctx
    return contexts


def check_task_names(entries: Mapping[str, Sequence[str]], collection: Any) -> None:
    """Refuse the first entry naming a task the project lacks (names are checked before any arguments)."""
    known = task_names(collection)
    for key, values in entries.items():
        for entry in values:
            name = split_entry(entry, key)[0]
            if name not in known:
                raise ConfigError(f"dockyard.ci.{key}: no task {name!r} in this project (see `inv --list`); fix "
                                  "the name so the CI file does not call a missing task")


def bind(entry: str, key: str, collection: Any, placeholders: Mapping[str, Placeholder],
         environments: Sequence[str] = (), run_time_env: Callable[[str], str] | None = None) -> Invocation:
    """Turn a configured entry into an :class:`Invocation` the project's ``inv`` accepts, or refuse it.

    ``run_time_env(verb)`` is the environment a root ``deploy|rollback|status|history`` picks without ``--env``
    (:func:`dockyard.dispatch.default_environment`), so the job knows what that line acts on.
    """
    check_task_names({key: [entry]}, collection)
    words = split_entry(entry, key)
    name, rest = words[0], words[1:]
    ctx = _contexts(collection)[name]
    positional_names = [a.names[0] for a in ctx.positional_args]
    bound_positional: dict[str, str | Placeholder] = {}
    free_positional: list[str | Placeholder] = []
    flags: list[str | Placeholder] = []

    def placeholder(word: str) -> Placeholder | None:
        match = _PLACEHOLDER.match(word)
        if not match:
            if "{" in word and "}" in word:
                raise ConfigError(f"dockyard.ci.{key}: {entry!r}: a placeholder stands alone as a word, like "
                                  f"{{version}}; {key} may use {_listed(placeholders)}")
            return None
        if match[1] not in placeholders:
            raise ConfigError(f"dockyard.ci.{key}: {entry!r}: unknown placeholder {word}; {key} may use "
                              f"{_listed(placeholders)}")
        return placeholders[match[1]]

    i = 0
    while i < len(rest):
        word = rest[i]
        if word.startswith("-") and len(word) > 1:
            flag, eq, value = word.partition("=")
            argument = ctx.flags.get(flag) if flag.startswith("--") else _short_flag(ctx, flag)
            if argument is None:
                raise ConfigError(f"dockyard.ci.{key}: {entry!r}: task {name!r} has no flag {flag} "
                                  f"(its arguments: {_arguments(ctx)})")
            flags.append(f"--{argument.names[0]}")
            if argument.kind is not bool:
                if eq:
                    raw = value
                elif i + 1 < len(rest):
                    i += 1
                    raw = rest[i]
                else:
                    raise ConfigError(f"dockyard.ci.{key}: {entry!r}: {flag} needs a value")
                flags.append(placeholder(raw) or raw)
            i += 1
            continue
        value = placeholder(word)
        if value is not None:
            argument_name = value.name.replace("_", "-")
            if argument_name in positional_names:
                bound_positional[argument_name] = value
            elif f"--{argument_name}" in ctx.flags:
                flags += [f"--{argument_name}", value]
            else:
                raise ConfigError(f"dockyard.ci.{key}: {entry!r}: task {name!r} takes no {value.name!r} to put "
                                  f"{word} in (its arguments: {_arguments(ctx)})")
        else:
            free_positional.append(word)
        i += 1

    ordered: list[str | Placeholder] = []
    free = iter(free_positional)
    for argument_name in positional_names:
        if argument_name in bound_positional:
            ordered.append(bound_positional[argument_name])
        else:
            nxt = next(free, None)
            if nxt is not None:
                ordered.append(nxt)
    ordered += list(free)  # more words than positional arguments: the parser below names the stray one
    def chosen(verb: str) -> str:
        try:
            return run_time_env(verb) if run_time_env is not None else ""
        except DockyardError as exc:
            raise ConfigError(f"dockyard.ci.{key}: {entry!r}: `inv {verb}` would fail in CI: {exc.message}") from None

    invocation = Invocation(name, tuple(ordered + flags),
                            _environments_of(name, ctx, ordered, flags, environments, chosen))
    check(invocation, key, collection)
    return invocation


def check(invocation: Invocation, key: str, collection: Any) -> None:
    """Parse the line with Invoke's own parser, exactly as ``inv`` will when the pipeline runs it."""
    from invoke.exceptions import ParseError
    from invoke.parser import Parser

    argv = invocation.sample_argv()
    shown = f"`{invocation.shell()}`"
    try:
        parsed = Parser(contexts=parser_contexts(collection)).parse_argv(argv)
    except ParseError as exc:
        raise ConfigError(f"dockyard.ci.{key}: {shown} would fail in CI: {exc}") from None
    if len(parsed) != 1:
        raise ConfigError(f"dockyard.ci.{key}: {shown} would run {len(parsed)} tasks "
                          f"({', '.join(c.name for c in parsed)}); put each task in its own entry")


def _environments_of(name: str, ctx: Any, positional: Sequence[Any], flags: Sequence[Any],
                     environments: Sequence[str], run_time_env: Callable[[str], str]) -> tuple[str, ...]:
    found: list[str] = []
    head = name.split(".", 1)[0]
    if "." in name and head in environments:
        found.append(head)
    values = dict(zip([a.names[0] for a in ctx.positional_args], positional))
    for n in range(len(flags) - 1):
        if isinstance(flags[n], str) and flags[n].startswith("--"):
            values[flags[n][2:]] = flags[n + 1]
    env_argument = ctx.args.get("env")
    if env_argument is not None:
        value = values.get("env", env_argument.default)
        if value == "" and name in VERBS:  # the root task picks it when it runs
            value = run_time_env(name)
        if isinstance(value, str) and value in environments:
            found.append(value)
    return tuple(dict.fromkeys(found))


def _short_flag(ctx: Any, flag: str) -> Any:
    for argument in ctx.args.values():
        if flag.lstrip("-") in argument.names:
            return argument
    return None


def _arguments(ctx: Any) -> str:
    shown = [a.names[0].upper() for a in ctx.positional_args]
    shown += [f"--{a.names[0]}" for a in ctx.args.values() if not a.positional]
    return " ".join(shown) or "none"


def _listed(placeholders: Mapping[str, Placeholder]) -> str:
    return ", ".join(f"{{{n}}}" for n in placeholders) or "no placeholders"

"""Remote commands of a staging deploy, built as data (argv tuples); :mod:`dockyard.clients.ssh` runs them.

Every ``docker`` command uses the deploy's own ``--config`` directory, so registry logins are kept apart from
the login user's. Secrets never appear here: the registry password is a Command's ``stdin`` and the app's
environment is a file (``--env-file``) uploaded with mode 0600.
"""
from __future__ import annotations

import shlex
from typing import Mapping, Sequence

from ..clients.docker import login_command
from ..runner import Command
from .model import (
    LABEL_APP,
    LABEL_ENV,
    LABEL_PREFIX,
    LABEL_ROLE,
    LABEL_SERVICE,
    LABEL_VERSION,
    Accessory,
    Layout,
    RunSpec,
    StagingTarget,
)
from .proxy import MOUNT

PS_FORMAT = '{{.Names}}\t{{.State}}\t{{.Label "' + LABEL_VERSION + '"}}\t{{.Label "' + LABEL_ROLE + '"}}\t{{.CreatedAt}}\t{{.Image}}\t{{.Label "' + LABEL_SERVICE + '"}}'


def docker(layout: Layout, *args: str, stdin: str | None = None) -> Command:
    return Command(("docker", "--config", layout.docker_config, *args), stdin=stdin)


def shell(script: str, *args: str) -> Command:
    """``sh -c SCRIPT sh ARGS...``: values are positional parameters, never spliced into the script."""
    return Command(("sh", "-c", script, "sh", *args))


def docker_version(layout: Layout) -> Command:
    return docker(layout, "version", "--format", "{{.Server.Version}}")


def make_dirs(layout: Layout) -> Command:
    return shell('mkdir -p "$1" "$2" "$3" && chmod 700 "$1" "$3"', layout.root, layout.proxy_dir,
                 layout.docker_config)


def resolve_dir(state_dir: str, prefix: str, *, create: bool = True) -> Command:
    """Create the state directory (relative to the login's home) and print its absolute path.

    Without ``create`` (read-only tasks) nothing is made: a missing directory is printed as it would be.
    """
    if not create:
        return shell('cd "$1/$2" 2>/dev/null && pwd -P || { case "$1" in /*) d="$1/$2";; *) d="$HOME/$1/$2";; esac; '
                     'printf "%s\\n" "$d"; }', state_dir, prefix)
    return shell('mkdir -p "$1/$2" && chmod 700 "$1" "$1/$2" && cd "$1/$2" && pwd -P', state_dir, prefix)


def ensure_network(layout: Layout) -> Command:
    net = shlex.quote(layout.network)
    config = shlex.quote(layout.docker_config)
    return shell(f"docker --config {config} network inspect {net} >/dev/null 2>&1 || "
                 f"docker --config {config} network create {net} >/dev/null")


def labels(target: StagingTarget, layout: Layout, role: str, version: str = "") -> list[str]:
    values = {LABEL_APP: target.app, LABEL_ENV: target.env_name, LABEL_PREFIX: layout.prefix, LABEL_ROLE: role}
    if version:
        values[LABEL_VERSION] = version
    out: list[str] = []
    for key, value in values.items():
        out += ["--label", f"{key}={value}"]
    return out


def list_containers(layout: Layout, role: str = "") -> Command:
    filters = ["--filter", f"label={LABEL_PREFIX}={layout.prefix}"]
    if role:
        filters += ["--filter", f"label={LABEL_ROLE}={role}"]
    return docker(layout, "ps", "--all", "--no-trunc", *filters, "--format", PS_FORMAT)


def login(layout: Layout, registry: str, username: str, password: str) -> Command:
    return login_command(registry, username, password, config=layout.docker_config)


def pull(layout: Layout, image: str) -> Command:
    return docker(layout, "pull", "--quiet", image)


def image_present(layout: Layout, image: str) -> Command:
    return docker(layout, "image", "inspect", "--format", "{{.Id}}", image)


def run_app(target: StagingTarget, layout: Layout, version: str, *, env_file: bool,
            spec: RunSpec | None = None) -> Command:
    """The app container of ``version``; ``spec`` is its compose entry (none: the image's ENTRYPOINT and CMD)."""
    return run_release_service(target, layout, version, spec or RunSpec(""), role="app",
                               name=layout.app_container(version), env_file=layout.env_file if env_file else "")


def run_worker(target: StagingTarget, layout: Layout, version: str, spec: RunSpec, *, env_file: bool) -> Command:
    """A worker of ``version``: another compose service of the release image, off the proxy."""
    return run_release_service(target, layout, version, spec, role="worker",
                               name=layout.worker_container(spec.service, version),
                               env_file=layout.worker_env_file(spec.service) if env_file else "")


def run_release_service(target: StagingTarget, layout: Layout, version: str, spec: RunSpec, *, role: str, name: str,
                        env_file: str) -> Command:
    """``docker run`` of the release image as ``spec`` says; values reach it in ``env_file``, never in argv."""
    argv = ["run", "--detach", "--name", name, "--network", layout.network, "--restart", "unless-stopped",
            *labels(target, layout, role, version)]
    if spec.service:
        argv += ["--label", f"{LABEL_SERVICE}={spec.service}"]
    argv += ["--env", f"DOCKYARD_VERSION={version}"]
    if env_file:
        argv += ["--env-file", env_file]
    if spec.working_dir:
        argv += ["--workdir", spec.working_dir]
    if spec.user:
        argv += ["--user", spec.user]
    for volume in spec.volumes:
        argv += ["--volume", service_volume(layout, volume)]
    argv += entrypoint_flag(spec.entrypoint)
    argv += [target.image(version), *entrypoint_args(spec.entrypoint), *spec.command]
    return docker(layout, *argv)


def run_release_command(target: StagingTarget, layout: Layout, version: str, spec: RunSpec, argv: Sequence[str],
                        *, env_file: bool, entrypoint_mode: str) -> Command:
    """The release command in a one-off container of ``version`` (``docker run --rm``, attached): the app's
    network (accessories answer by name), env file, volumes, working directory and user, its command replaced.

    ``entrypoint_mode`` is ``dockyard.command_entrypoint`` (:mod:`dockyard.core.entrypoint`): ``bypass`` runs
    ``argv`` instead of the entrypoint, ``apply`` hands it to the app's entrypoint, as ``docker compose run`` does.
    """
    from ..core.entrypoint import APPLY

    args = ["run", "--rm", "--name", layout.release_container, "--network", layout.network,
            *labels(target, layout, "release", version), "--env", f"DOCKYARD_VERSION={version}"]
    if env_file:
        args += ["--env-file", layout.env_file]
    if spec.working_dir:
        args += ["--workdir", spec.working_dir]
    if spec.user:
        args += ["--user", spec.user]
    for volume in spec.volumes:
        args += ["--volume", service_volume(layout, volume)]
    if entrypoint_mode == APPLY:
        args += entrypoint_flag(spec.entrypoint)
        args += [target.image(version), *entrypoint_args(spec.entrypoint), *argv]
    else:
        args += ["--entrypoint", argv[0], target.image(version), *argv[1:]]
    return docker(layout, *args)


#: Runs ``docker run --rm ...`` (``$4...``) with its output on stdout, and removes the container ``$2`` when it is
#: still running ``$3`` seconds later (exit 124): closing the SSH channel would not stop it.
RELEASE_SCRIPT = ('c="$1" n="$2" t="$3"; shift 3; s=$(date +%s); "$@" </dev/null 2>&1 & p=$!; '
                  'while kill -0 "$p" 2>/dev/null; do '
                  'if [ "$(( $(date +%s) - s ))" -ge "$t" ]; then '
                  'docker --config "$c" rm --force "$n" >/dev/null 2>&1; wait "$p"; exit 124; fi; '
                  'sleep 0.2 2>/dev/null || sleep 1; done; wait "$p"')


def bounded_release(layout: Layout, run: Command, seconds: int) -> Command:
    """``run`` (:func:`run_release_command`), stopped and removed on the host after ``seconds``."""
    return shell(RELEASE_SCRIPT, layout.docker_config, layout.release_container, str(seconds), *run.argv)


def entrypoint_flag(entrypoint: Sequence[str] | None) -> list[str]:
    """``docker run --entrypoint`` takes one word: the first; the rest go in front of the command."""
    if entrypoint is None:
        return []
    return ["--entrypoint", entrypoint[0] if entrypoint else ""]


def entrypoint_args(entrypoint: Sequence[str] | None) -> list[str]:
    return list(entrypoint[1:]) if entrypoint else []


def ensure_volumes(target: StagingTarget, layout: Layout, names: Sequence[str]) -> Command:
    """Create the volumes ``names`` (prefixed: :meth:`Layout.volume`) that are missing; an existing one (and its
    data) is left as it is."""
    config = shlex.quote(layout.docker_config)
    label = " ".join(f"--label {shlex.quote(f'{k}={v}')}" for k, v in
                     ((LABEL_APP, target.app), (LABEL_ENV, target.env_name), (LABEL_PREFIX, layout.prefix)))
    script = (f'for v in "$@"; do docker --config {config} volume inspect "$v" >/dev/null 2>&1 || '
              f'docker --config {config} volume create {label} "$v" >/dev/null || exit 1; done')
    return shell(script, *names)


def run_proxy(target: StagingTarget, layout: Layout, port: int) -> Command:
    publish = f"{target.proxy_bind}:{port}:80" if target.proxy_bind else f"{port}:80"
    return docker(layout, "run", "--detach", "--name", layout.proxy, "--network", layout.network,
                  "--restart", "unless-stopped", *labels(target, layout, "proxy"),
                  "--publish", publish, "--volume", f"{layout.proxy_dir}:{MOUNT}:ro",
                  target.proxy_image, "nginx", "-c", f"{MOUNT}/nginx.conf", "-g", "daemon off;")


def copy_static(layout: Layout, container: str, directory: str) -> Command:
    """The static files of ``container`` (its image's ``directory``) into the directory the proxy serves; files of
    the version before stay, so its pages still in flight keep their stylesheets."""
    cli = shlex.join(("docker", "--config", layout.docker_config))
    return shell(f'mkdir -p "$3" && chmod 755 "$3" && {cli} cp "$1:$2/." "$3/"', container, directory,
                 layout.static_files)


def reload_proxy(layout: Layout) -> Command:
    """Check the new configuration, then reload gracefully (old workers finish their requests)."""
    conf = f"{MOUNT}/nginx.conf"
    return docker(layout, "exec", layout.proxy, "sh", "-c", 'nginx -t -q -c "$0" && nginx -s reload -c "$0"', conf)


def run_accessory(target: StagingTarget, layout: Layout, accessory: Accessory, *, env_file: bool) -> Command:
    """``env_file``: its values (settings ``env``, or compose ``environment`` and ``env_file``) were uploaded."""
    argv = ["run", "--detach", "--name", layout.accessory_container(accessory.name), "--network", layout.network,
            "--network-alias", accessory.name, "--restart", "unless-stopped",
            *labels(target, layout, "accessory")]
    argv += ["--label", f"{LABEL_VERSION}={accessory.name}"]
    for port in accessory.ports:
        argv += ["--publish", port]
    for volume in accessory.volumes:
        argv += ["--volume", accessory_volume(layout, volume)]
    if env_file:
        argv += ["--env-file", layout.accessory_env_file(accessory.name)]
    argv += entrypoint_flag(accessory.entrypoint)
    argv += [accessory.image, *entrypoint_args(accessory.entrypoint), *accessory.command]
    return docker(layout, *argv)


def accessory_volume(layout: Layout, volume: str) -> str:
    """A named volume gets the deploy's prefix (two deploys on one host keep their data apart)."""
    source, sep, rest = volume.partition(":")
    if sep and not source.startswith(("/", ".", "~")):
        return f"{layout.volume(source)}:{rest}"
    return volume


#: the app's and workers' volumes are named as the accessories' are
service_volume = accessory_volume


def start(layout: Layout, container: str) -> Command:
    return docker(layout, "start", container)


def stop(layout: Layout, containers: Sequence[str], timeout: int) -> Command:
    return docker(layout, "stop", "--time", str(timeout), *containers)


def remove(layout: Layout, containers: Sequence[str]) -> Command:
    return docker(layout, "rm", "--force", *containers)


def rename(layout: Layout, container: str, new_name: str) -> Command:
    return docker(layout, "rename", container, new_name)


def remove_images(layout: Layout, images: Sequence[str]) -> Command:
    """Without ``--force``: the engine itself refuses an image that any container (even stopped) still uses."""
    return docker(layout, "image", "rm", *images)


def list_images(layout: Layout, repository: str) -> Command:
    """The tagged images of ``repository`` on the host, one ``repository:tag`` a line."""
    return docker(layout, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository)


def container_status(layout: Layout, containers: Sequence[str]) -> Command:
    """``NAME STATUS RESTARTS EXITCODE`` a line: whether a just-started worker is still up."""
    return docker(layout, "inspect", "--format", "{{.Name}} {{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}",
                  *containers)


def container_address(layout: Layout, container: str) -> Command:
    """The container's state and address on the app network: ``running 172.18.0.3``."""
    fmt = '{{.State.Status}} {{with index .NetworkSettings.Networks "' + layout.network + '"}}{{.IPAddress}}{{end}}'
    return docker(layout, "inspect", "--format", fmt, container)


def logs(layout: Layout, container: str, *, tail: int | None = 50, follow: bool = False) -> Command:
    argv = ["logs"]
    if tail is not None:
        argv += ["--tail", str(tail)]
    if follow:
        argv.append("--follow")
    return docker(layout, *argv, container)


def exec_in(layout: Layout, container: str, cmd: str, *, tty: bool = False, stdin: str | None = None,
            entrypoint: Sequence[str] = ()) -> Command:
    """``tty``: an interactive command (``-it``); the SSH session then needs a pty too. ``stdin`` is fed to the
    command (``-i``): how a secret reaches it without appearing on a command line. ``entrypoint`` goes in front of
    ``sh -c CMD`` under ``command_entrypoint: apply`` (see :mod:`dockyard.core.entrypoint`)."""
    flags = ["--interactive", "--tty"] if tty else ["--interactive"] if stdin is not None else []
    return docker(layout, "exec", *flags, container, *entrypoint, "sh", "-c", cmd, stdin=stdin)


def container_entrypoint(layout: Layout, container: str) -> Command:
    """The container's entrypoint as JSON (``null`` when it has none)."""
    return docker(layout, "inspect", "--format", "{{json .Config.Entrypoint}}", container)


def tail_file(path: str, lines: int) -> Command:
    return shell('tail -n "$2" "$1" 2>/dev/null || true', path, str(lines))


def describe(commands: Sequence[Command], mask=None) -> list[str]:
    return [f"$ {c.display(mask)}" for c in commands]


def env_file_text(values: Mapping[str, str]) -> str:
    """An env file docker reads (``--env-file``): one KEY=value per line, values verbatim."""
    lines = []
    for key, value in values.items():
        if "\n" in value:
            raise ValueError(f"{key}: docker env files cannot hold multi-line values")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + ("\n" if lines else "")

"""``imagehop``: transfer an image between regions from a shell.

    imagehop demo                                   # local cloud, DFW -> IAD, boot it
    imagehop transfer --source-region DFW --target-region IAD --image-id <id>
    imagehop plan --source-region DFW --target-region IAD --server-id <id>
    imagehop sandbox up|down|env|status

``transfer`` and ``plan`` run the ``transfer-image`` flow in this process (on the Prefect
server named by ``PREFECT_API_URL``, else a temporary local one, a child of this process that
dies with it). Their options mirror the flow's request; credentials come from ``IMAGEHOP_*``
variables, never from options.

Exit codes: 0 done; 1 the transfer failed; 2 bad usage; 3 refused by pre-flight (nothing was
created); 4 configuration or credentials; 130 interrupted. A failure prints one line (the
reason and what to do), always the last line; ``--debug`` adds the traceback and Prefect's
own logs, ``--json`` a JSON error object on stdout; the exit code is the same.

Prefect is imported only by the commands that run a flow, and only once the request, the
settings and the logins were accepted, so ``--help``, ``sandbox`` and refusals of bad input
are quick.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
import threading
import traceback
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from imagehop.procedure.request import (
    DEFAULT_PROPERTIES,
    BootRequest,
    Cleanup,
    TransferRequest,
)

if TYPE_CHECKING:
    from rich.console import Console

    from imagehop.procedure.result import DryRunPlan, TransferResult
    from imagehop.settings import Settings
    from imagehop.tasks.progress import Event

ACCOUNT_VARIABLES = (
    "IMAGEHOP_IDENTITY_URL",
    "IMAGEHOP_USERNAME",
    "IMAGEHOP_API_KEY",
    "IMAGEHOP_PASSWORD",
    "IMAGEHOP_TARGET_",
)
EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_CONFIG, EXIT_INTERRUPTED = 1, 2, 3, 4, 130
#: The ``kind`` of a ``--json`` error object, by exit code.
ERROR_KINDS = {
    EXIT_FAILED: "failed",
    EXIT_USAGE: "usage",
    EXIT_REFUSED: "refused",
    EXIT_CONFIG: "configuration",
    EXIT_INTERRUPTED: "interrupted",
}
#: Request fields whose option is not ``--<field with dashes>``.
OPTION_OF_FIELD = {
    "properties_to_copy": "--copy-property",
    "boot.flavor": "--boot-flavor",
    "boot.name": "--boot-name",
}
#: Contexts entered for the rest of the process (the Prefect API setting of a temporary server).
_PROCESS_SCOPE = ExitStack()
#: Width of the summary table when stderr is not a terminal: wide enough for whole ids.
LOG_WIDTH = 200
#: Set for the commands that run a flow, unless the user set them.
PREFECT_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "imagehop",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}

app = typer.Typer(
    name="imagehop",
    help="Move a server image between regions (Cloud Images export/import), verified and "
    "resumable, as a Prefect flow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rich panels cut option names in 80 columns
)
sandbox_app = typer.Typer(
    help="The local two-region cloud (real Swift) for trying imagehop.", rich_markup_mode=None
)
app.add_typer(sandbox_app, name="sandbox")


def _help(field: str) -> str:
    return TransferRequest.model_fields[field].description or ""


SourceRegion = Annotated[str, typer.Option(help=_help("source_region"))]
TargetRegion = Annotated[str, typer.Option(help=_help("target_region"))]
SourceCloud = Annotated[str | None, typer.Option(help=_help("source_cloud"))]
TargetCloud = Annotated[str | None, typer.Option(help=_help("target_cloud"))]
ImageId = Annotated[str | None, typer.Option(help=_help("image_id"))]
ServerId = Annotated[str | None, typer.Option(help=_help("server_id"))]
TargetImageName = Annotated[str | None, typer.Option(help=_help("target_image_name"))]
PropertyKey = Annotated[
    str | None, typer.Option("--coordinating-property-key", help=_help("coordinating_property_key"))
]
PropertyValue = Annotated[
    str | None,
    typer.Option("--coordinating-property-value", help=_help("coordinating_property_value")),
]
RunKey = Annotated[str | None, typer.Option(help=_help("run_key"))]
ExportContainer = Annotated[str | None, typer.Option(help=_help("export_container"))]
ImportContainer = Annotated[str | None, typer.Option(help=_help("import_container"))]
CopyProperty = Annotated[
    list[str] | None,
    typer.Option(
        "--copy-property",
        help="A property to copy (repeat the option). Default: " + ", ".join(DEFAULT_PROPERTIES),
    ),
]
# No min/max here: the request's own check names the range (``_validation_line``).
Concurrency = Annotated[int | None, typer.Option(help=_help("concurrency"))]
Debug = Annotated[bool, typer.Option(help="Show tracebacks and Prefect's logs.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


@app.command()
def transfer(
    source_region: SourceRegion,
    target_region: TargetRegion,
    source_cloud: SourceCloud = None,
    target_cloud: TargetCloud = None,
    image_id: ImageId = None,
    server_id: ServerId = None,
    target_image_name: TargetImageName = None,
    coordinating_property_key: PropertyKey = None,
    coordinating_property_value: PropertyValue = None,
    run_key: RunKey = None,
    export_container: ExportContainer = None,
    import_container: ImportContainer = None,
    copy_property: CopyProperty = None,
    boot: Annotated[bool, typer.Option(help="Boot a server from the new image.")] = False,
    boot_flavor: Annotated[
        str | None, typer.Option(help=BootRequest.model_fields["flavor"].description)
    ] = None,
    boot_name: Annotated[
        str | None, typer.Option(help=BootRequest.model_fields["name"].description)
    ] = None,
    cleanup: Annotated[Cleanup, typer.Option(help=_help("cleanup"))] = "delete-intermediates",
    concurrency: Concurrency = None,
    dry_run: Annotated[bool, typer.Option(help=_help("dry_run"))] = False,
    debug: Debug = False,
    as_json: AsJson = False,
) -> None:
    """Transfer an image (or a new image of a server) to another region."""
    fields: dict[str, Any] = {
        "source_region": source_region,
        "target_region": target_region,
        "source_cloud": source_cloud,
        "target_cloud": target_cloud,
        "image_id": image_id,
        "server_id": server_id,
        "target_image_name": target_image_name,
        "coordinating_property_key": coordinating_property_key,
        "coordinating_property_value": coordinating_property_value,
        "run_key": run_key,
        "export_container": export_container,
        "import_container": import_container,
        "properties_to_copy": tuple(copy_property) if copy_property else None,
        "boot": {"flavor": boot_flavor, "name": boot_name} if boot else None,
        "cleanup": cleanup,
        "concurrency": concurrency,
        "dry_run": dry_run,
    }
    mode = Mode(debug, as_json)
    if not boot and (boot_flavor or boot_name):
        given = "--boot-flavor" if boot_flavor else "--boot-name"
        _fail(
            EXIT_USAGE, f"invalid request: {given} needs --boot: add --boot, or drop {given}", mode
        )
    _print_outcome(_run(_request(fields, mode), mode), as_json)


@app.command()
def plan(
    source_region: SourceRegion,
    target_region: TargetRegion,
    source_cloud: SourceCloud = None,
    target_cloud: TargetCloud = None,
    image_id: ImageId = None,
    server_id: ServerId = None,
    run_key: RunKey = None,
    export_container: ExportContainer = None,
    import_container: ImportContainer = None,
    concurrency: Concurrency = None,
    debug: Debug = False,
    as_json: AsJson = False,
) -> None:
    """Check a transfer and show its plan (steps, bytes, segments, duration); change nothing."""
    fields: dict[str, Any] = {
        "source_region": source_region,
        "target_region": target_region,
        "source_cloud": source_cloud,
        "target_cloud": target_cloud,
        "image_id": image_id,
        "server_id": server_id,
        "run_key": run_key,
        "export_container": export_container,
        "import_container": import_container,
        "concurrency": concurrency,
        "dry_run": True,
    }
    mode = Mode(debug, as_json)
    _print_outcome(_run(_request(fields, mode), mode), as_json)


StateDir = Annotated[
    Path | None,
    typer.Option(help="State folder of the local cloud (default: $IMAGEHOP_SANDBOX_DIR or "
                 "~/.imagehop_sandbox)."),
]  # fmt: skip


@app.command()
def demo(
    state_dir: StateDir = None,
    stop_cloud: Annotated[
        bool, typer.Option(help="Stop the local cloud afterwards (default: leave it up).")
    ] = False,
    debug: Debug = False,
    as_json: AsJson = False,
) -> None:
    """Start the local cloud, image its demo server in DFW, transfer the image to IAD, boot
    a server from it there, and print the new image and server ids."""
    _need_sandbox_extra()
    from imagehop_sandbox import control
    from imagehop_sandbox.handle import LocalCloud

    folder = state_dir or control.default_state_dir()
    _say(f"starting the local cloud in {folder} (first start: about a minute) ...")
    cloud = LocalCloud(control.up(folder))
    for name in [n for n in os.environ if n.startswith(ACCOUNT_VARIABLES)]:
        del os.environ[name]  # the demo runs as the local cloud's own account, nobody else's
    os.environ.update(cloud.settings_env())
    server_id = cloud.admin.seed()["DFW"]["demo_server"]
    _say(f"transferring an image of server {server_id} from DFW to IAD and booting it")
    request = TransferRequest(
        source_region="DFW", target_region="IAD", server_id=server_id, boot=BootRequest()
    )
    try:
        _print_outcome(_run(request, Mode(debug, as_json)), as_json)
    finally:
        if stop_cloud:
            control.down(folder)
            _say("local cloud stopped")
        else:
            _say("the local cloud keeps running: `imagehop sandbox down` stops it")


# -- sandbox -------------------------------------------------------------------------------

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def _need_sandbox_extra() -> None:
    """The local cloud runs real Swift servers: without the ``sandbox`` extra, say how to get
    it (before anything starts)."""
    import importlib.util

    if (
        importlib.util.find_spec("swift") is None
        or importlib.util.find_spec("imagehop_sandbox") is None
    ):
        _fail(
            EXIT_CONFIG,
            "the local cloud needs the sandbox extra (OpenStack Swift): "
            "pip install 'imagehop[sandbox]' (from a clone: pip install -e '.[sandbox]')",
        )


def _sandbox(command: str, state_dir: Path | None, extra: list[str]) -> NoReturn:
    _need_sandbox_extra()
    from imagehop_sandbox.__main__ import main as sandbox_main

    prefix = ["--state-dir", str(state_dir)] if state_dir else []
    try:
        code = sandbox_main([*prefix, command, *extra])
    except (RuntimeError, ValueError) as error:  # e.g. "the local cloud is not up"
        _fail(EXIT_FAILED, " ".join(str(error).split()))
    raise typer.Exit(code)


@sandbox_app.command("up", context_settings=PASS_THROUGH)
def sandbox_up(ctx: typer.Context, state_dir: StateDir = None) -> None:
    """Start the local cloud in the background (idempotent); `python -m imagehop_sandbox up
    --help` lists its options (token lifetime, task durations, sizes, --instant-jobs: no 30 s
    poll waits)."""
    _sandbox("up", state_dir, ctx.args)


@sandbox_app.command("down")
def sandbox_down(state_dir: StateDir = None) -> None:
    """Stop the local cloud; no process is left behind."""
    _sandbox("down", state_dir, [])


@sandbox_app.command("env", context_settings=PASS_THROUGH)
def sandbox_env(ctx: typer.Context, state_dir: StateDir = None) -> None:
    """Print `export IMAGEHOP_...` lines: eval "$(imagehop sandbox env)"."""
    _sandbox("env", state_dir, ctx.args)


@sandbox_app.command("status")
def sandbox_status(state_dir: StateDir = None) -> None:
    """Whether the local cloud runs, and its URLs (exit code 3 when it is down)."""
    _sandbox("status", state_dir, [])


# -- running a flow --------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """How failures show: ``debug`` adds the traceback (the one-line error stays the last
    line), ``as_json`` adds a JSON error object on stdout. The exit code is the same."""

    debug: bool = False
    as_json: bool = False


def _request(fields: dict[str, Any], mode: Mode) -> TransferRequest:
    from pydantic import ValidationError

    try:
        return TransferRequest(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(_validation_line(e) for e in error.errors())
        _fail(EXIT_USAGE, f"invalid request: {problems}", mode, error)


#: pydantic error types of a number outside a field's bounds.
BOUNDS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def _validation_line(error: Any) -> str:
    """One pydantic error of the request, in the words of the command line: options, not
    field names."""
    where = ".".join(str(part) for part in error.get("loc", ()) if not isinstance(part, int))
    message = _with_options(str(error.get("msg", "")).removeprefix("Value error, "))
    from imagehop.settings import value_rule

    field = TransferRequest.model_fields.get(where)
    rule = value_rule(field.metadata) if field is not None and error.get("type") in BOUNDS else ""
    if rule:
        message = f"{error.get('input')} is refused: it must be {rule}"
    return f"{option_of(where)}: {message}" if where else message


def option_of(field: str) -> str:
    """The option that sets a request field: ``target_image_name`` -> ``--target-image-name``."""
    return OPTION_OF_FIELD.get(field, "--" + field.replace("_", "-"))


def _with_options(message: str) -> str:
    """``give exactly one of image_id and server_id`` -> ``... --image-id and --server-id``."""
    names = "|".join(sorted(TransferRequest.model_fields, key=len, reverse=True))
    return re.sub(rf"\b({names})\b", lambda found: option_of(found.group(1)), message)


def _run(request: TransferRequest, mode: Mode) -> TransferResult | DryRunPlan:
    """Check the settings and log in (before Prefect is imported: a refusal is quick), then
    run transfer-image here, showing phases and a progress bar; exit on failure."""
    _check_before_prefect(mode, request)
    _prepare_prefect(mode.debug)
    try:
        _use_prefect_api()
        from imagehop.flows.transfer_image import transfer_image
        from imagehop.tasks import progress

        display = _Display()
        with display, progress.subscribed(display.on_event):
            return transfer_image(request)
    except KeyboardInterrupt as error:
        _fail(EXIT_INTERRUPTED, "interrupted; a re-run with the same request resumes", mode, error)
    except Exception as error:
        _fail(_exit_code(error), _one_line(error, mode), mode, error)


def _check_before_prefect(mode: Mode, request: TransferRequest) -> None:
    """Settings valid, the request's clouds known (else exit 3) and both accounts' logins
    accepted, or exit 4 with one line."""
    from imagehop.errors import ImagehopError
    from imagehop.settings import read_settings

    try:
        _log_in(read_settings().for_clouds(request.source_cloud, request.target_cloud))
    except ImagehopError as error:
        _fail(_exit_code(error), _one_line(error, mode), mode, error)


def _log_in(settings: Settings) -> None:
    """Log both accounts in, in the registry the flow's tasks use (they reuse the tokens).
    Skipped when a secret comes from a Prefect Secret block (loading it needs Prefect), as a
    cloud profile's secrets always do; the pre-flight task logs in then."""
    from imagehop.tasks import cloud

    for secret, block in cloud.SECRET_BLOCK_FIELDS:
        if getattr(settings, secret) is None and getattr(settings, block):
            return
    registry = cloud.clients()
    for side in ("source", "target"):
        registry.tokens(side).token()


def _use_prefect_api() -> None:
    """The Prefect API for the run: the configured one, else a temporary server started here
    that dies with this process, ``kill -9`` included (:mod:`imagehop.flows.temporary_server`).

    It serves until the interpreter exits (stopped by an exit handler registered before
    Prefect's own, so Prefect's log and event workers flush to it first), as Prefect's own
    temporary server does; the setting pointing at it stays for the process's lifetime.
    """
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    from imagehop.flows import temporary_server

    current = get_current_settings()
    if current.api.url or not current.server.ephemeral.enabled or not temporary_server.supported():
        return
    env = {**os.environ, **current.to_environment_variables(exclude_unset=True)}
    timeout = float(current.server.ephemeral.startup_timeout_seconds)
    server = temporary_server.TemporaryServer(env, timeout)
    server.start()
    atexit.register(server.stop)
    _PROCESS_SCOPE.enter_context(temporary_settings(updates={PREFECT_API_URL: server.api_url}))


def _prepare_prefect(debug: bool) -> None:
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if not debug:
        # The display (phases, progress, what a failed run keeps) and the one-line error
        # replace Prefect's console log, tracebacks included; the run's logs still reach the
        # Prefect API (and its UI).
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "ERROR")


def _exit_code(error: BaseException) -> int:
    from imagehop.errors import AuthenticationError, ConfigurationError, PreflightError

    if isinstance(error, PreflightError):
        return EXIT_REFUSED
    if isinstance(error, ConfigurationError | AuthenticationError):
        return EXIT_CONFIG
    return EXIT_FAILED


def _one_line(error: BaseException, mode: Mode = Mode()) -> str:
    from imagehop.errors import ImagehopError

    text = " ".join(str(error).split())
    if isinstance(error, ImagehopError):
        return text
    hint = "" if mode.debug else " (run again with --debug for details)"
    return f"{type(error).__name__}: {text}{hint}"


def _fail(
    code: int, message: str, mode: Mode = Mode(), error: BaseException | None = None
) -> NoReturn:
    """Exit with ``code`` after the one-line error on stderr (its last line); ``--debug``
    prints the traceback before it, ``--json`` a JSON error object on stdout."""
    if mode.debug and error is not None:
        traceback.print_exception(error, file=sys.stderr)
    if mode.as_json:
        sys.stdout.write(json.dumps(error_object(code, message, error), indent=2) + "\n")
    sys.stderr.write(f"imagehop: error: {message}\n")
    raise typer.Exit(code)


def error_object(code: int, message: str, error: BaseException | None = None) -> dict[str, Any]:
    """What ``--json`` prints on a failure: the one-line message (secret-free, as every
    imagehop message), the exit code, its kind, and the error's class."""
    return {
        "error": message,
        "exit_code": code,
        "kind": ERROR_KINDS.get(code, "failed"),
        "type": type(error).__name__ if error is not None else None,
    }


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")


class _Display:
    """Phase lines and a copy progress bar on stderr, fed by progress events."""

    #: Off a terminal (a log, cron mail) the copy shows as one line per this share of bytes.
    LOG_STEP_PERCENT = 10

    def __init__(self) -> None:
        self._console = _stderr_console()
        self._bar: Any = None
        self._bar_task: Any = None
        self._logged_percent = -100  # nothing logged yet
        self._lock = threading.Lock()  # events come from the copy's worker threads

    def __enter__(self) -> _Display:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_bar()

    def on_event(self, event: Event) -> None:
        with self._lock:
            self._show(event)

    def _show(self, event: Event) -> None:
        if event.kind == "copy-progress":
            self._show_copy(event)
        elif event.kind == "phase-finished":
            self._stop_bar()
            self._console.print(f"[green]done[/]  {event.phase:<11} {event.seconds:6.1f} s")
        elif event.kind == "phase-failed":
            self._stop_bar()
            self._console.print(f"[red]failed[/] {event.phase}")
        elif event.kind == "phase-started":
            self._console.print(f"[dim]...[/]   {event.phase}")
        elif event.kind == "run-failed":
            self._console.print(event.detail, markup=False, highlight=False, soft_wrap=True)

    def _show_copy(self, event: Event) -> None:
        if self._console.is_terminal:
            self._show_bar(event)
        else:
            self._log_copy(event)

    def _log_copy(self, event: Event) -> None:
        step = self.LOG_STEP_PERCENT
        percent = 100 * event.bytes_done // event.bytes_total if event.bytes_total else 100
        finished = percent == 100 and self._logged_percent != 100
        if percent < self._logged_percent + step and not finished:
            return
        self._logged_percent = percent
        self._console.print(
            f"copy  {percent:3d} %  {_mib(event.bytes_done)} of {_mib(event.bytes_total)} MiB, "
            f"{event.segments_done}/{event.segments_total} segments",
            highlight=False,
        )

    def _show_bar(self, event: Event) -> None:
        if self._bar is None:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            self._bar = Progress(
                TextColumn("copy"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TextColumn("{task.fields[segments]}"),
                console=self._console,
                transient=True,
            )
            self._bar_task = self._bar.add_task("copy", total=event.bytes_total, segments="")
            self._bar.start()
        segments = f"{event.segments_done}/{event.segments_total} segments"
        self._bar.update(self._bar_task, completed=event.bytes_done, segments=segments)

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _mib(count: int) -> str:
    return f"{count / 1024**2:.1f}"


def _stderr_console() -> Console:
    """The console of everything the CLI shows on stderr. Off a terminal (a log, cron mail)
    rich would fold at 80 columns, cutting ids in two: there it is LOG_WIDTH wide."""
    from rich.console import Console

    return Console(stderr=True, width=None if sys.stderr.isatty() else LOG_WIDTH)


def _print_outcome(outcome: TransferResult | DryRunPlan, as_json: bool) -> None:
    from imagehop.procedure.result import TransferResult

    if as_json:
        sys.stdout.write(outcome.model_dump_json(indent=2) + "\n")
        return
    from rich.table import Table

    table = Table(show_header=False, box=None)
    table.add_column("item", style="dim", no_wrap=True)
    table.add_column("value", overflow="fold")
    for row in outcome.summary_rows():
        table.add_row(row["item"], row["value"])
    console = _stderr_console()
    with console.capture() as captured:
        console.print(table)
    sys.stderr.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    if isinstance(outcome, TransferResult):
        sys.stdout.write(f"new image {outcome.target_image_id} in {outcome.target_region}\n")
        if outcome.server_id:
            sys.stdout.write(f"server {outcome.server_id} in {outcome.target_region} is ACTIVE\n")
    else:
        sys.stdout.write(
            f"plan: {outcome.bytes} bytes in about {outcome.segments} segments, about "
            f"{outcome.estimated_seconds / 60:.0f} min; nothing was changed\n"
        )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``imagehop`` script. Usage errors found while parsing the options
    (a missing or out-of-range option) get a ``--json`` error object too."""
    args = sys.argv[1:] if argv is None else argv
    try:
        code = app(args=args, standalone_mode=False)
    except typer.TyperException as error:  # click's ClickException: a usage error
        _show_usage_error(error, "--json" in args)
    except typer.Abort:  # Ctrl-C before a command ran
        sys.stderr.write("imagehop: error: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


def _show_usage_error(error: Any, as_json: bool) -> NoReturn:
    code = int(getattr(error, "exit_code", EXIT_USAGE))
    if as_json:
        message = " ".join(str(error.format_message()).split())
        sys.stdout.write(json.dumps(error_object(code, message, error), indent=2) + "\n")
    error.show()
    sys.exit(code)

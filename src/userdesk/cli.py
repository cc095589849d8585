"""The `userdesk` command. Each command is one service call in one transaction."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.core import TyperGroup

from userdesk.access import service as access
from userdesk.access.rules import system_actor
from userdesk.audit import service as audit
from userdesk.auth import service as auth
from userdesk.config import get_settings
from userdesk.db.session import Database
from userdesk.errors import DomainError, NotFound
from userdesk.exports import service as exports
from userdesk.imports import service as imports
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.segments.columns import parse_keys as parse_column_keys
from userdesk.two_step import service as two_step
from userdesk.users import service as users
from userdesk.validation import text_problem


class _CheckedGroup(TyperGroup):
    """The `userdesk` command: an argument holding a NUL or a lone surrogate (how Python
    reads bytes of argv that are not UTF-8) is refused, naming its option, before any
    command runs or anything reaches the database."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        for index, arg in enumerate(args):
            if problem := text_problem(arg):
                if arg.startswith("--") and "=" in arg:
                    name = arg.split("=", 1)[0]
                elif index and args[index - 1].startswith("-"):
                    name = args[index - 1]
                else:
                    name = f"argument {index + 1}"
                raise typer.BadParameter(problem, ctx=ctx, param_hint=ascii(name)[1:-1])
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_CheckedGroup, help="Userdesk: manage the users of your product.", no_args_is_help=True
)
api_key_app = typer.Typer(help="API keys for the host product and scripts.", no_args_is_help=True)
app.add_typer(api_key_app, name="api-key")
console = Console()
errors = Console(stderr=True)

OrgOption = Annotated[
    str | None, typer.Option("--org", help="Organization slug (default: the only one).")
]


def _database() -> Database:
    return Database.from_settings(get_settings())  # with its read replicas, if any


@contextmanager
def _transaction() -> Iterator[Session]:
    """One unit of work; a DomainError is printed with its fields and exits with 1."""
    database = _database()
    try:
        with database.unit_of_work() as db:
            yield db
    except DomainError as exc:
        _fail(exc)
    finally:
        database.dispose()


def _fail(exc: DomainError) -> NoReturn:
    """Print EXC with its fields and exit with 1."""
    errors.print(f"[red]Error:[/red] {exc.message}")
    for field, problem in exc.fields.items():
        errors.print(f"  {field}: {problem}")
    raise typer.Exit(1) from None


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    from userdesk.db.migrate import upgrade  # here, not on top: alembic slows every command

    database = _database()
    upgrade(database.engine)
    database.dispose()
    console.print("Database is up to date.")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The administrator's email.")],
    password: Annotated[str, typer.Option(help="At least 8 characters.")],
    org: OrgOption = None,
    first_name: Annotated[str, typer.Option()] = "",
    last_name: Annotated[str, typer.Option()] = "",
) -> None:
    """Create an Administrator, or reset the password of an existing one."""
    with _transaction() as db:
        organization = organizations.resolve_organization(db, org, create=True)
        user, created = users.create_admin(
            db,
            actor=system_actor(organization.id, "userdesk create-admin"),
            email=email,
            password=password,
            first_name=first_name,
            last_name=last_name,
        )
        verb = "Created" if created else "Reset the password of"
        console.print(f"{verb} Administrator {user.email} in '{organization.slug}'.")


@api_key_app.command("create")
def api_key_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    role: Annotated[str, typer.Option(help="The role the key acts with, by name.")],
    team: Annotated[
        str | None, typer.Option(help="For a team-scoped role: the team, by name.")
    ] = None,
    org: OrgOption = None,
) -> None:
    """Create an API key and print it once: only its hash is kept."""
    with _transaction() as db:
        organization = organizations.resolve_organization(db, org)
        role_row = access.get_role_by_name(db, organization.id, role)
        team_row = access.get_team_by_name(db, organization.id, team) if team else None
        created = auth.create_api_key(
            db,
            actor=system_actor(organization.id, "userdesk api-key create"),
            name=name,
            role=role_row,
            team=team_row,
        )
    print(created.secret)


scim_token_app = typer.Typer(help="SCIM tokens for identity providers.", no_args_is_help=True)
app.add_typer(scim_token_app, name="scim-token")


@scim_token_app.command("create")
def scim_token_create(
    name: Annotated[str, typer.Option(help="The identity provider, e.g. Okta.")],
    org: OrgOption = None,
) -> None:
    """Create a SCIM provisioning token and print it once: only its hash is kept."""
    from userdesk.scim import tokens as scim_tokens

    with _transaction() as db:
        organization = organizations.resolve_organization(db, org)
        created = scim_tokens.create_token(
            db, actor=system_actor(organization.id, "userdesk scim-token create"), name=name
        )
    print(created.secret)


@app.command("scim-settings")
def scim_settings_command(
    creates_teams: Annotated[
        bool | None,
        typer.Option(
            "--creates-teams/--no-creates-teams",
            help="Whether a provisioned user's department that names no team creates one.",
        ),
    ] = None,
    org: OrgOption = None,
) -> None:
    """Show the organization's SCIM settings, or change them (audited)."""
    from userdesk.scim import settings as scim_settings

    with _transaction() as db:
        organization = organizations.resolve_organization(db, org)
        if creates_teams is not None:
            scim_settings.set_creates_teams(
                db,
                actor=system_actor(organization.id, "userdesk scim-settings"),
                value=creates_teams,
            )
        shown = scim_settings.creates_teams(db, organization.id)
    print(f"creates teams: {'on' if shown else 'off'}")


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


@app.command("demo")
def demo_command(
    users_count: Annotated[int, typer.Option("--users", min=1, help="How many users to add.")],
    seed: Annotated[int, typer.Option(help="Seed, for the same people every time.")] = 1,
    org: OrgOption = None,
) -> None:
    """Add realistic demo users with teams, groups, roles and months of activity."""
    from userdesk import demo  # here, not on top: faker slows every command

    started = time.perf_counter()
    with _transaction() as db, _progress() as progress:
        organization = organizations.resolve_organization(db, org, create=True)
        task = progress.add_task("Adding demo users", total=users_count)
        result = demo.populate(
            db,
            organization=organization,
            count=users_count,
            seed=seed,
            progress=lambda n: progress.advance(task, n),
        )
    elapsed = time.perf_counter() - started
    console.print(
        f"Added {result.users:,} users and {result.events:,} activity events "
        f"to '{organization.slug}' in {elapsed:.1f} s."
    )


def _database_is_empty(database: Database) -> bool:
    with database.sessions() as db:
        return (db.scalar(select(func.count()).select_from(Organization)) or 0) == 0


# How long a server process may take to answer its supervisor before it is replaced.
HEALTHCHECK_SECONDS = 30


def _exit_cleanly(_signal: int, _frame: object) -> None:
    """SIGINT or SIGTERM to `serve`: exit with 0 once the `finally` blocks ran (the outbox
    worker stopped between two messages). One server process hands the signal it caught
    back here when it has stopped serving; several, their supervisor keeps it."""
    raise SystemExit(0)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(min=1, show_default=False, help="Server processes (default: one per core)."),
    ] = None,
    demo_users: Annotated[
        int,
        typer.Option(help="On an empty database, first create a demo organization this big."),
    ] = 0,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
    worker: Annotated[
        bool, typer.Option(help="Run the outbox worker beside the server processes.")
    ] = True,
) -> None:
    """Migrate, then serve the console, the portal and the API from WORKERS processes
    (and send queued mail beside them)."""
    import uvicorn

    from userdesk import demo
    from userdesk.db.migrate import upgrade
    from userdesk.web import server
    from userdesk.web.access_log import log_config as server_log_config
    from userdesk.web.app import create_app
    from userdesk.worker import Worker  # here, not on top: numpy slows every command

    processes = workers or os.cpu_count() or 1
    settings = get_settings()
    if not settings.base_url_given:  # links in emails point where this server listens
        settings = dataclasses.replace(settings, base_url=f"http://{host}:{port}")
        # The server processes read their settings afresh: from the environment they inherit.
        os.environ["USERDESK_BASE_URL"] = settings.base_url
    database = _database()
    upgrade(database.engine)  # once, before any server process starts
    if demo_users and _database_is_empty(database):
        with database.unit_of_work() as db, _progress() as progress:
            task = progress.add_task("Creating the demo organization", total=demo_users)
            made = demo.create_demo_organization(
                db,
                count=demo_users,
                progress=lambda n: progress.advance(task, n),
                base_url=settings.base_url,  # the links of the demo's first emails
            )
        with console.status("Scoring the demo users' churn risk"):
            demo.score(database, organization_id=made.organization.id, base_url=settings.base_url)
        console.rule("Userdesk demo")
        console.print(f"Console:  http://{host}:{port}/login")
        console.print(f"Email:    [bold]{made.admin_email}[/bold]")
        console.print(f"Password: [bold]{made.admin_password}[/bold]")
        console.rule()
    else:
        console.print(f"Serving http://{host}:{port}/login")
        if demo_users:
            console.print(
                "The database has data already; to set an admin password, run "
                "`userdesk create-admin --email E --password P`."
            )
    console.print(
        f"{processes} server process{'es' if processes > 1 else ''}"
        + (", and the outbox worker beside them." if worker else "; no outbox worker.")
    )
    # One outbox worker, a thread of this process: beside the server in it (one process),
    # or beside uvicorn's supervisor, which stops the server processes on SIGINT/SIGTERM and
    # returns; then the worker stops too.
    outbox = Worker(database, settings) if worker else None
    thread = threading.Thread(target=outbox.run, name="outbox", daemon=True) if outbox else None
    if not settings.smtp_url:
        console.print("No USERDESK_SMTP_URL: emails stay in the outbox (console: Mailbox).")
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _exit_cleanly)
    try:
        if thread:
            thread.start()
        # Several processes each build their app (server.app); one serves this one's.
        served = server.IMPORT_STRING if processes > 1 else create_app(settings, database)
        server.settle()
        uvicorn.run(
            served,
            factory=processes > 1,
            workers=processes,
            # A process starting on a busy machine takes seconds to import the app: not hung.
            timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
            host=host,
            port=port,
            log_level="info",
            access_log=access_log,
            log_config=server_log_config(),  # the security log on stderr
            server_header=False,  # no "Server: uvicorn" (what runs is nobody's business)
        )
    finally:
        if outbox and thread:
            outbox.stop()
            thread.join(timeout=10)
        database.dispose()


@app.command("export")
def export_command(
    q: Annotated[str, typer.Option("--q", help="The query, as in the Users list.")] = "",
    sort: Annotated[str, typer.Option(help="name, email, created or seen; - reverses.")] = "name",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="The file (default: standard output).")
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="The custom fields to write, by key (plan,seats); '' for none. "
            "Default: every field not archived.",
        ),
    ] = None,
    org: OrgOption = None,
) -> None:
    """Write the users matching QUERY as CSV, with their custom fields."""
    database = _database()
    with _transaction() as db:
        actor = system_actor(organizations.resolve_organization(db, org).id, "userdesk export")
    try:
        fields = exports.check(
            database,
            actor=actor,
            q=q,
            sort=sort,
            columns=None if columns is None else parse_column_keys(columns),
        )
    except DomainError as exc:
        errors.print(f"[red]Error:[/red] {exc.message}")
        raise typer.Exit(1) from None
    target = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        for chunk in exports.stream(database, actor=actor, q=q, sort=sort, columns=fields):
            target.write(chunk)
    finally:
        if output:
            target.close()
        database.dispose()


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A CSV file with a header row.", exists=True)],
    dry_run: Annotated[
        bool, typer.Option("--dry-run/--no-dry-run", help="Only report what would happen.")
    ] = False,
    send_invitations: Annotated[
        bool, typer.Option(help="Email each new user an invitation.")
    ] = False,
    status: Annotated[
        str,
        typer.Option(
            help="What a row with a password_hash makes: pending (invited) or active "
            "(signs in at once)."
        ),
    ] = "pending",
    org: OrgOption = None,
) -> None:
    """Import users from CSV (columns guessed from the header) and print each row's fate."""
    settings = get_settings()
    database = _database()
    with _transaction() as db:
        actor = system_actor(organizations.resolve_organization(db, org).id, "userdesk import")
    try:  # read before the transaction: a server beside goes on writing meanwhile
        upload = imports.read_upload(actor=actor, filename=file.name, content=file.read_bytes())
        parsed = imports.parse_upload(upload)
    except DomainError as exc:
        _fail(exc)
    with _transaction() as db:
        job = imports.keep_draft(db, actor=actor, upload=upload)
        job = imports.start(
            db,
            actor=actor,
            job_id=job.id,
            dry_run=dry_run,
            send_invitations=send_invitations,
            parsed=parsed,
            status=status,
        )
        job_id, total = job.id, job.total
    _run_job(database, job_id, "Dry run" if dry_run else "Importing", total, settings.base_url)
    with database.sessions() as db:
        job = db.get_one(Job, job_id)
        # Plain text: a report of many rows goes out at once, and no cell is read as markup.
        sys.stdout.writelines(
            f"row {row['row']}: {row['fate']}: {row['detail']}\n"
            for row in jobs.items(db, job, failed_only=True)
        )
        console.print(
            f"{job.done:,} {'would be created' if dry_run else 'created'}, {job.failed:,} not."
        )
    database.dispose()


def _run_job(database: Database, job_id: int, label: str, total: int, base_url: str) -> None:
    """Run a job here and now, a step per transaction, with a progress bar."""
    finished = False
    with _progress() as progress:
        task = progress.add_task(label, total=total)
        while not finished:
            with database.unit_of_work() as db:
                job = db.get_one(Job, job_id)
                finished = jobs.step(db, job=job, base_url=base_url)
                progress.update(task, completed=job.done + job.failed)


churn_app = typer.Typer(help="Churn prediction.", no_args_is_help=True)
app.add_typer(churn_app, name="churn")


@churn_app.command("score")
def churn_score(
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", help="Score as of this date (UTC); now by default."),
    ] = None,
    org: OrgOption = None,
) -> None:
    """Score every user's churn risk (one score row per user, the history kept)."""
    from userdesk.churn import scoring  # here, not on top: numpy slows every command
    from userdesk.churn.models import ChurnRun

    settings = get_settings()
    database = _database()
    moment = as_of.replace(tzinfo=UTC) if as_of else None
    with _transaction() as db:
        actor = system_actor(organizations.resolve_organization(db, org).id, "userdesk churn")
        job = scoring.start(db, actor=actor, as_of=moment)
        job_id, total = job.id, job.total
    started = time.perf_counter()
    _run_job(database, job_id, "Scoring", total, settings.base_url)
    with database.sessions() as db:
        job = db.get_one(Job, job_id)
        run = db.get_one(ChurnRun, job.params["run_id"])
        counts = scoring.level_counts(db, run)
        problems = [p["problem"] for p in job.problems]
    console.print(
        f"Scored {run.users:,} users as of {run.as_of:%Y-%m-%d %H:%M} UTC in "
        f"{time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{counts.get(level, 0):,} {level}" for level in ("low", "medium", "high"))
    )
    check = run.calibration
    console.print(f"Predicted: {check.get('predicts', '')} Model: {run.model}.")
    for problem in problems:
        errors.print(f"[yellow]Note:[/yellow] {problem}")
    if not run.users:
        database.dispose()
        raise typer.Exit(1)
    console.print(
        f"Backtest ({check['users']:,} users, as of {check['snapshot'][:10]}): of those active "
        "in the 30 days before, the share who then went quiet, by level: "
        + ", ".join(
            f"{level} {found['went_quiet']:.0%} of {found['users']:,}"
            for level, found in check["reliability"].items()
            if found["users"]
        )
        + f"; already inactive: {check['inactive']['users']:,}, of whom "
        f"{check['inactive']['stayed_quiet'] or 0:.0%} stayed quiet."
    )
    database.dispose()


@churn_app.command("evaluate")
def churn_evaluate(
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", help="A public dataset to evaluate on: cdnow."),
    ] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", help="Backtest the organization's data as of this date (UTC)."),
    ] = None,
    horizon: Annotated[
        str, typer.Option("--horizon", help="The period in which a user goes quiet, like 30d.")
    ] = "30d",
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="What churn is: inactivity[:TYPES] or event:TYPE, with an optional "
            "@TYPE/DAYS scope (the organization's setting by default).",
        ),
    ] = None,
    org: OrgOption = None,
) -> None:
    """Measure the churn models: on CDNOW (--dataset cdnow), or backtested on the
    organization's own data (--as-of DATE --horizon 30d [--target ...]) beside a logistic
    baseline."""
    from rich.table import Table

    from userdesk.churn import boosting, cdnow, evaluation
    from userdesk.churn import definition as churn_definition
    from userdesk.churn import rules as churn_rules
    from userdesk.churn import settings as churn_settings

    columns = ("Model", "AUC", "Log loss", "Brier", "Top-decile lift", "Base rate")
    if dataset is not None:
        if dataset.lower() != "cdnow":
            errors.print(f"[red]Error:[/red] unknown dataset {dataset!r}: the one known is cdnow")
            raise typer.Exit(2)
        try:
            found = cdnow.evaluate()
        except cdnow.DatasetMissing as exc:
            errors.print(f"[red]Error:[/red] {exc}")
            raise typer.Exit(1) from None
        table = Table(
            *columns, title=f"CDNOW: who buys again in weeks 40-78 ({found.customers:,} customers)"
        )
        for row in evaluation.rows({"BG/NBD (baseline)": found.baseline, cdnow.NAME: found.ours}):
            table.add_row(*row)
        console.print(table)
        p = found.params
        console.print(
            f"BG/NBD fitted on weeks 1-39: r={p.r:.3f} alpha={p.alpha:.3f} a={p.a:.3f} "
            f"b={p.b:.3f}. " + found.note
        )
        return
    if as_of is None:
        errors.print("[red]Error:[/red] give --dataset cdnow, or --as-of DATE for a backtest")
        raise typer.Exit(2)
    with _transaction() as db:
        span = evaluation.parse_horizon(horizon)
        organization_id = organizations.resolve_organization(db, org).id
        organization = db.get_one(Organization, organization_id)
        churn = (
            churn_definition.parse_target(target)
            if target
            else churn_settings.of_organization(organization)
        )
        found_org = evaluation.organization(
            db,
            organization_id,
            as_of.replace(tzinfo=UTC),
            span,
            churn_rules.cutoffs_of(organization),
            churn,
        )
    console.print(f"Predicted: {found_org.predicts}")
    table = Table(
        *columns,
        title=f"Backtest as of {found_org.snapshot:%Y-%m-%d}: who {found_org.outcome} in the next "
        f"{found_org.horizon_days} days ({found_org.scored:,} users in scope)",
    )
    for row in evaluation.rows(
        {
            "Transparent + calibration": found_org.transparent,
            f"Gradient boosting ({boosting.NAME})": found_org.boosting,
            f"Logistic baseline ({boosting.BASELINE})": found_org.baseline,
        }
    ):
        table.add_row(*row)
    console.print(table)
    console.print(f"Gradient boosting: {found_org.boosting_note}.")
    for name, levels in found_org.reliability.items():
        console.print(
            f"Levels of the {name} model, the share who then {found_org.outcome}: "
            + ", ".join(
                f"{level} {share:.0%} of {users:,}" if share is not None else f"{level} none"
                for level, (users, share) in levels.items()
            )
        )
    if found_org.dormant:
        console.print(
            f"Already inactive at the snapshot (reported apart): {found_org.dormant:,} users"
            + (
                f", of whom {found_org.dormant_stayed_quiet:.0%} stayed quiet."
                if found_org.dormant_stayed_quiet is not None
                else "."
            )
        )
    console.print(found_org.verdict)
    for problem in found_org.problems:
        errors.print(f"[yellow]Note:[/yellow] {problem}")
    if found_org.transparent is None:
        raise typer.Exit(1)


audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(org: OrgOption = None) -> None:
    """Check the audit log's hash chain; name the first broken link and exit 1 on a break."""
    with _transaction() as db, _progress() as progress:
        organization_id = organizations.resolve_organization(db, org).id if org else None
        events = audit.count_events(db, organization_id=organization_id)
        task = progress.add_task("Checking", total=events)
        breaks = audit.verify_chain(
            db,
            organization_id=organization_id,
            checked=lambda more: progress.advance(task, more),
        )
        if not breaks:
            progress.update(task, completed=events)
    for found in breaks:
        errors.print(
            f"[red]Broken:[/red] organization {found.organization_id}, audit event "
            f"{found.event_id}: {found.problem}."
        )
    if breaks:
        raise typer.Exit(1)
    console.print(f"The audit log is intact: {events:,} events checked.")


two_step_app = typer.Typer(help="Two-step verification.", no_args_is_help=True)
app.add_typer(two_step_app, name="two-step")


@two_step_app.command("reset")
def two_step_reset(
    email: Annotated[str, typer.Option(help="The person who lost their authenticator.")],
    org: OrgOption = None,
) -> None:
    """Turn off someone's two-step verification (an Administrator's too): they sign in with
    their password and set it up again."""
    with _transaction() as db:
        organization = organizations.resolve_organization(db, org)
        user = users.find_by_email(db, organization.id, email)
        if user is None:
            _fail(NotFound(f"No user {email} in '{organization.slug}'.", fields={"email": email}))
        two_step.reset(
            db, actor=system_actor(organization.id, "userdesk two-step reset"), user_id=user.id
        )
        console.print(f"Two-step verification is off for {user.email}.")


@app.command("worker")
def worker_command() -> None:
    """Run the outbox worker alone until SIGINT or SIGTERM: send queued emails, run jobs,
    lift ended bans. Any number may run, beside `userdesk serve` and each other: each
    message and each job is leased to one worker at a time."""
    stopping = threading.Event()  # a SIGTERM during the imports below stops it cleanly too
    for stop_signal in (signal.SIGINT, signal.SIGTERM):  # finish the pass, then stop
        signal.signal(stop_signal, lambda _signal, _frame: stopping.set())
    from userdesk.worker import Worker  # here, not on top: numpy slows every command

    settings = get_settings()
    database = _database()
    outbox = Worker(database, settings, stopping=stopping)
    if settings.smtp_url:
        console.print(f"Outbox worker {outbox.name} sending through {settings.smtp_url}")
    else:
        console.print(
            f"Outbox worker {outbox.name}: no USERDESK_SMTP_URL, so emails stay in the outbox "
            "(console: Mailbox); jobs run."
        )
    try:
        outbox.run()
    finally:
        database.dispose()
    console.print(f"Outbox worker {outbox.name} stopped.")


if __name__ == "__main__":
    app()

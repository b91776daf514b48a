"""Store imagehop's credentials in Prefect once, so no deployment, parameter or YAML holds them.

    python deployments/credentials.py               # from IMAGEHOP_* variables; asks for the rest
    python deployments/credentials.py --no-prompt   # IMAGEHOP_* variables only (CI, scripts)
    python deployments/credentials.py --clouds      # the Secret blocks IMAGEHOP_CLOUDS names

It reads the account the way the flows do (``IMAGEHOP_*`` variables or ``.env``), asks for what
is missing (secrets without echo), logs in once to check them, then writes:

* a **Secret block** per secret: ``imagehop-api-key`` (or ``imagehop-password``), and
  ``imagehop-target-api-key`` / ``imagehop-target-password`` for a separate target account
  (``IMAGEHOP_API_KEY_SECRET_BLOCK`` ... choose other names);
* **Variables** for what is not secret: ``imagehop_identity_url``, ``imagehop_username`` (and
  ``imagehop_target_username``). ``deployments/prefect.yaml`` copies them into the job
  variables when ``prefect deploy`` runs.

Finally it prints the job-variable ``env`` entries that match what it stored. With ``--clouds``
it asks instead for the secret of every Secret block the cloud profiles of ``IMAGEHOP_CLOUDS``
name (once per block, without echo), logs in as each profile, and saves those blocks.

Secrets are never printed, logged or taken as arguments (a command line is visible to every
user of the host).
Run it where ``PREFECT_API_URL`` points at the Prefect server the workers use.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr, ValidationError

from imagehop.errors import ImagehopError
from imagehop.identity import TokenManager
from imagehop.settings import PROFILE_SECRETS, Settings

Side = Literal["source", "target"]
SecretKind = Literal["api_key", "password"]
#: ask(question, secret) -> answer; a secret answer is read without echo.
Ask = Callable[[str, bool], str]

DEFAULT_BLOCKS: dict[tuple[Side, SecretKind], str] = {
    ("source", "api_key"): "imagehop-api-key",
    ("source", "password"): "imagehop-password",
    ("target", "api_key"): "imagehop-target-api-key",
    ("target", "password"): "imagehop-target-password",
}
IDENTITY_URL_VARIABLE = "imagehop_identity_url"
USERNAME_VARIABLES: dict[Side, str] = {
    "source": "imagehop_username",
    "target": "imagehop_target_username",
}


#: How a profile's secret is named in a question.
SECRET_LABELS = {
    "api_key": "API key",
    "password": "Password",
    "application_credential_secret": "Application credential secret",
}


class CredentialsError(Exception):
    """Something the operator has to fix; the message says what."""


@dataclass(frozen=True)
class StoredSecret:
    """One secret and the Secret block it goes to."""

    side: Side
    kind: SecretKind
    block: str
    value: SecretStr

    @property
    def settings_field(self) -> str:
        """The Settings field holding this secret, e.g. ``target_api_key``."""
        return settings_field(self.side, self.kind)

    @property
    def block_variable(self) -> str:
        """The environment variable naming the block, e.g. ``IMAGEHOP_API_KEY_SECRET_BLOCK``."""
        return f"IMAGEHOP_{self.settings_field.upper()}_SECRET_BLOCK"


@dataclass(frozen=True)
class CredentialSet:
    """The complete login (one or two accounts) and where each secret is stored."""

    settings: Settings
    secrets: tuple[StoredSecret, ...]

    @property
    def has_target(self) -> bool:
        return self.settings.target_username is not None

    def variables(self) -> dict[str, str]:
        """Prefect Variables: the non-secret half of the login."""
        values = {
            IDENTITY_URL_VARIABLE: self.settings.identity_url,
            USERNAME_VARIABLES["source"]: self.settings.username or "",
        }
        if self.settings.target_username is not None:
            values[USERNAME_VARIABLES["target"]] = self.settings.target_username
        return values

    def job_env(self) -> dict[str, str]:
        """The job-variable ``env`` entries that give a flow run this login."""
        env = {
            "IMAGEHOP_IDENTITY_URL": variable_template(IDENTITY_URL_VARIABLE),
            "IMAGEHOP_USERNAME": variable_template(USERNAME_VARIABLES["source"]),
        }
        if self.has_target:
            env["IMAGEHOP_TARGET_USERNAME"] = variable_template(USERNAME_VARIABLES["target"])
        env.update({secret.block_variable: secret.block for secret in self.secrets})
        return env


def collect(settings: Settings, ask: Ask | None) -> CredentialSet:
    """Complete ``settings`` by asking (``ask`` None: never ask) and pick the Secret blocks.

    Raises:
        CredentialsError: something is missing and may not be asked for.
    """
    if not settings.username:
        name = _ask(ask, "IMAGEHOP_USERNAME", "User name: ", secret=False)
        settings = settings.model_copy(update={"username": name})
    sides: tuple[Side, ...] = ("source", "target") if settings.target_username else ("source",)
    secrets = tuple(_secret(settings, side, ask) for side in sides)
    updates = {secret.settings_field: secret.value for secret in secrets}
    return CredentialSet(settings.model_copy(update=updates), secrets)


def _secret(settings: Settings, side: Side, ask: Ask | None) -> StoredSecret:
    """The side's API key, else its password, from the settings or asked for."""
    prefix = "target_" if side == "target" else ""
    for kind in ("api_key", "password"):
        value = getattr(settings, prefix + kind)
        if value is not None:
            return _stored(settings, side, kind, value)
    user = getattr(settings, prefix + "username")
    env_name = f"IMAGEHOP_{prefix.upper()}API_KEY"
    question = f"API key of {user} (leave empty to give a password instead): "
    key = _ask(ask, env_name, question, secret=True, allow_empty=True)
    if key:
        return _stored(settings, side, "api_key", SecretStr(key))
    password = _ask(ask, env_name, f"Password of {user}: ", secret=True)
    return _stored(settings, side, "password", SecretStr(password))


def _stored(settings: Settings, side: Side, kind: SecretKind, value: SecretStr) -> StoredSecret:
    """The secret, in the block the settings name (IMAGEHOP_..._SECRET_BLOCK) or the default."""
    named = getattr(settings, f"{settings_field(side, kind)}_secret_block")
    return StoredSecret(side, kind, named or DEFAULT_BLOCKS[(side, kind)], value)


def settings_field(side: Side, kind: SecretKind) -> str:
    """The Settings field of a secret: ``api_key``, ``target_password`` ..."""
    return kind if side == "source" else f"target_{kind}"


def _ask(
    ask: Ask | None, env_name: str, question: str, *, secret: bool, allow_empty: bool = False
) -> str:
    if ask is None:
        raise CredentialsError(f"{env_name} is not set (and asking is off)")
    answer = ask(question, secret).strip()
    if not answer and not allow_empty:
        raise CredentialsError(f"no answer to {question.strip()!r}")
    return answer


def check_login(credentials: CredentialSet) -> list[str]:
    """Log in with every account once; one line per account (tenant, Images regions).

    Raises:
        ImagehopError: Identity refused a login or could not be reached.
    """
    settings = credentials.settings
    managers = {"source": TokenManager.for_source(settings)}
    if credentials.has_target:
        managers["target"] = TokenManager.for_target(settings)
    lines = []
    for side, tokens in managers.items():
        regions = ", ".join(tokens.catalog.regions("image")) or "none"
        lines.append(f"{side} account: tenant {tokens.tenant_id}, Images in {regions}")
    return lines


def store(credentials: CredentialSet) -> list[str]:
    """Write the Secret blocks and Variables (overwriting); returns what was written."""
    from prefect.blocks.system import Secret
    from prefect.variables import Variable

    written = []
    for secret in credentials.secrets:
        Secret(value=secret.value).save(secret.block, overwrite=True)
        written.append(f"Secret block {secret.block!r} ({secret.kind} of the {secret.side} user)")
    for name, value in credentials.variables().items():
        Variable.set(name, value, overwrite=True)
        written.append(f"Variable {name} = {value}")
    return written


@dataclass(frozen=True)
class ProfileSecret:
    """The secret of one Secret block that cloud profiles name (one or more profiles)."""

    block: str
    kind: str  # a Settings secret field: api_key, password, application_credential_secret
    clouds: tuple[str, ...]
    value: SecretStr


def collect_profile_secrets(settings: Settings, ask: Ask | None) -> tuple[ProfileSecret, ...]:
    """Ask for the secret of every Secret block the profiles of ``settings.clouds`` name,
    once per block (two profiles may share one).

    Raises:
        CredentialsError: no profiles, or asking is off.
    """
    if not settings.clouds:
        raise CredentialsError(
            "IMAGEHOP_CLOUDS is not set: --clouds stores the Secret blocks its profiles name "
            "(deployments/README.md, One pool, several cloud pairs)"
        )
    if ask is None:
        raise CredentialsError(
            "--clouds asks for each profile's secret without echo: run it in a terminal "
            "(secrets are never taken from arguments)"
        )
    wanted: dict[str, tuple[str, list[str]]] = {}
    for name, profile in settings.clouds.items():
        for secret, block_field in PROFILE_SECRETS.items():
            block = getattr(profile, block_field)
            if block:
                wanted.setdefault(block, (secret, []))[1].append(name)
    found = []
    for block, (kind, clouds) in wanted.items():
        question = f"{SECRET_LABELS[kind]} of {', '.join(clouds)} (Secret block {block}): "
        value = _ask(ask, "IMAGEHOP_CLOUDS", question, secret=True)
        found.append(ProfileSecret(block, kind, tuple(clouds), SecretStr(value)))
    return tuple(found)


def check_profile_logins(settings: Settings, secrets: Sequence[ProfileSecret]) -> list[str]:
    """Log in as every profile once, with the secrets just given; one line per profile.

    Raises:
        ImagehopError: Identity refused a login or could not be reached.
    """
    values = {secret.block: secret.value for secret in secrets}
    lines = []
    for name in settings.clouds:
        side = settings.for_clouds(name, name)  # both sides: a worker may have no account
        updates = {
            secret: values[block]
            for secret, block_field in PROFILE_SECRETS.items()
            if (block := getattr(side, block_field)) in values
        }
        tokens = TokenManager.for_source(side.model_copy(update=updates))
        regions = ", ".join(tokens.catalog.regions("image")) or "none"
        lines.append(f"cloud {name}: tenant {tokens.tenant_id}, Images in {regions}")
    return lines


def store_profile_secrets(secrets: Sequence[ProfileSecret]) -> list[str]:
    """Write the profiles' Secret blocks (overwriting); returns what was written."""
    from prefect.blocks.system import Secret

    written = []
    for secret in secrets:
        Secret(value=secret.value).save(secret.block, overwrite=True)
        label = SECRET_LABELS[secret.kind]
        written.append(f"Secret block {secret.block!r} ({label} of {', '.join(secret.clouds)})")
    return written


def settings_from_environment() -> Settings:
    """Settings as the flows read them: IMAGEHOP_* variables, then ``.env``."""
    return Settings()  # type: ignore[call-arg]  # pydantic-settings fills in every field


def api_url_configured() -> bool:
    """Whether Prefect is pointed at a server (environment or profile), not a temporary one."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def variable_template(variable: str) -> str:
    """How prefect.yaml refers to a Prefect Variable (resolved by ``prefect deploy``)."""
    return "{{ prefect.variables." + variable + " }}"


def _terminal_ask(question: str, secret: bool) -> str:
    return getpass.getpass(question) if secret else input(question)


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python deployments/credentials.py",
        description="Store imagehop's credentials as Prefect Secret blocks (and the user name "
        "and Identity URL as Prefect Variables), from IMAGEHOP_* variables or asked for.",
    )
    parser.add_argument(
        "--no-prompt", action="store_true", help="never ask; fail when something is missing"
    )
    parser.add_argument("--no-check", action="store_true", help="store without logging in first")
    parser.add_argument(
        "--clouds",
        action="store_true",
        help="instead: ask for the secret of each Secret block the cloud profiles of "
        "IMAGEHOP_CLOUDS name, log in as each profile, and save those blocks",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not api_url_configured():
        sys.stderr.write(
            "credentials: error: PREFECT_API_URL is not set: the blocks would go to a "
            "temporary server that no worker sees\n"
        )
        return 2
    ask = None if args.no_prompt or not sys.stdin.isatty() else _terminal_ask
    try:
        logins, save, epilogue = prepare(args, ask)
    except (CredentialsError, ImagehopError, ValidationError) as error:
        sys.stderr.write(f"credentials: error: {error}\n")
        return 2
    for line in logins:
        _say(f"login ok: {line}")
    for line in save():
        _say(f"saved {line}")
    for line in epilogue:
        _say(line)
    return 0


def prepare(
    args: argparse.Namespace, ask: Ask | None
) -> tuple[list[str], Callable[[], list[str]], list[str]]:
    """Everything before the first write: what to store (asked for), the logins checked.
    Returns the login lines, the store step, and what to print after it."""
    settings = settings_from_environment()
    if args.clouds:
        secrets = collect_profile_secrets(settings, ask)
        logins = [] if args.no_check else check_profile_logins(settings, secrets)
        return logins, lambda: store_profile_secrets(secrets), []
    credentials = collect(settings, ask)
    logins = [] if args.no_check else check_login(credentials)
    env = [f'  {name}: "{value}"' for name, value in credentials.job_env().items()]
    heading = "job variables for deployments/prefect.yaml (work_pool.job_variables.env):"
    return logins, lambda: store(credentials), ["", heading, *env]


if __name__ == "__main__":
    sys.exit(main())

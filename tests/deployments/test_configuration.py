"""The deployment files and scripts without a server: what credentials.py stores and asks,
what serve.py makes of prefect.yaml, and that the Docker/Kubernetes examples keep the same
deployments."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from deployments.credentials import Ask, CredentialsError, collect, collect_profile_secrets
from deployments.limits import WantedLimit, build_parser, wanted_limits
from imagehop.procedure.request import BatchRequest
from imagehop.settings import Settings
from tests.deployments.conftest import FILESYSTEM_LEASE_STORAGE, LEASE_STORAGE
from tests.deployments.expected import NIGHTLY, WEEKLY, prefect_yaml, yaml_deployments
from tests.deployments.processes import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "deployments" / "examples"
IDENTITY = "http://identity.example/v2.0"
#: Variables that would hold a secret itself (job variables may only name Secret blocks).
SECRET_VARIABLES = {
    "IMAGEHOP_API_KEY",
    "IMAGEHOP_PASSWORD",
    "IMAGEHOP_TARGET_API_KEY",
    "IMAGEHOP_TARGET_PASSWORD",
}


def settings(**fields: Any) -> Settings:
    """Settings from these fields only (no environment, no .env)."""
    return Settings.model_validate({"identity_url": IDENTITY, **fields})


class Answers:
    """A scripted operator: answers questions in order, records (question, secret)."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, bool]] = []

    def __call__(self, question: str, secret: bool) -> str:
        self.asked.append((question, secret))
        return self.answers.pop(0)


def never_ask(question: str, secret: bool) -> str:
    raise AssertionError(f"asked {question!r} although everything was given")


# -- credentials.py ----------------------------------------------------------------------------


def test_a_complete_environment_is_stored_without_a_question() -> None:
    stored = collect(settings(username="ops", api_key="k-123"), never_ask)

    assert [(s.block, s.value.get_secret_value()) for s in stored.secrets] == [
        ("imagehop-api-key", "k-123")
    ]
    assert stored.variables() == {"imagehop_identity_url": IDENTITY, "imagehop_username": "ops"}
    assert "k-123" not in repr(stored)


def test_missing_values_are_asked_for_and_secrets_without_echo() -> None:
    answers = Answers("ops", "k-typed")

    stored = collect(settings(), answers)

    assert [secret for _, secret in answers.asked] == [False, True]
    assert stored.settings.username == "ops"
    assert stored.settings.api_key == SecretStr("k-typed")


def test_an_empty_api_key_answer_asks_for_a_password_instead() -> None:
    answers = Answers("", "pw-typed")

    stored = collect(settings(username="ops"), answers)

    assert [(s.kind, s.block) for s in stored.secrets] == [("password", "imagehop-password")]
    assert stored.job_env()["IMAGEHOP_PASSWORD_SECRET_BLOCK"] == "imagehop-password"
    assert "IMAGEHOP_API_KEY_SECRET_BLOCK" not in stored.job_env()


def test_without_prompting_a_missing_secret_names_the_variable_to_set() -> None:
    with pytest.raises(CredentialsError, match="IMAGEHOP_API_KEY is not set"):
        collect(settings(username="ops"), None)


def test_a_target_account_gets_its_own_blocks_and_variable() -> None:
    given = settings(
        username="ops",
        api_key="k-src",
        target_username="dr",
        target_api_key_secret_block="dr-key",  # a name of the operator's choosing
    )
    ask: Ask = Answers("k-dst")

    stored = collect(given, ask)

    assert [(s.side, s.block) for s in stored.secrets] == [
        ("source", "imagehop-api-key"),
        ("target", "dr-key"),
    ]
    assert stored.settings.target_api_key == SecretStr("k-dst")
    assert stored.variables()["imagehop_target_username"] == "dr"
    env = stored.job_env()
    assert env["IMAGEHOP_TARGET_API_KEY_SECRET_BLOCK"] == "dr-key"
    assert env["IMAGEHOP_TARGET_USERNAME"] == "{{ prefect.variables.imagehop_target_username }}"


FLEX = "https://keystone.example/v3"
PROFILES = {
    "legacy-dfw": {"username": "ops", "api_key_secret_block": "rackspace-api-key"},
    "flex-sjc3": {"auth_type": "v3password", "identity_url": FLEX, "username": "ops",
                  "user_domain_name": "rackspace_cloud_domain",
                  "password_secret_block": "flex-password"},
    "flex-dfw3": {"auth_type": "v3password", "identity_url": FLEX, "username": "ops",
                  "user_domain_name": "rackspace_cloud_domain",
                  "password_secret_block": "flex-password"},
}  # fmt: skip


def test_clouds_asks_once_per_secret_block_without_echo() -> None:
    answers = Answers("k-typed", "pw-typed")

    secrets = collect_profile_secrets(settings(clouds=PROFILES), answers)

    assert answers.asked == [
        ("API key of legacy-dfw (Secret block rackspace-api-key): ", True),
        ("Password of flex-sjc3, flex-dfw3 (Secret block flex-password): ", True),
    ]
    assert [(s.block, s.kind, s.value.get_secret_value()) for s in secrets] == [
        ("rackspace-api-key", "api_key", "k-typed"),
        ("flex-password", "password", "pw-typed"),
    ]
    assert "k-typed" not in repr(secrets)


def test_clouds_without_a_terminal_or_without_profiles_says_what_to_do() -> None:
    with pytest.raises(CredentialsError, match="run it in a terminal"):
        collect_profile_secrets(settings(clouds=PROFILES), None)
    with pytest.raises(CredentialsError, match="IMAGEHOP_CLOUDS is not set"):
        collect_profile_secrets(settings(), never_ask)


def test_prefect_yaml_env_is_what_credentials_py_prints_for_one_account() -> None:
    printed = collect(settings(username="ops", api_key="k"), never_ask).job_env()

    env = prefect_yaml()["definitions"]["env"]

    assert {name: env[name] for name in printed} == printed
    assert not SECRET_VARIABLES & set(env)
    assert not [value for value in env.values() if "{{ prefect.blocks" in str(value)]


def test_scheduled_deployments_run_one_at_a_time_and_placeholders_stay_unscheduled() -> None:
    for name, spec in yaml_deployments().items():
        parameters = str(spec["parameters"])
        schedules = spec.get("schedules") or []
        if "REPLACE-WITH" in parameters:
            assert schedules and not any(s["active"] for s in schedules), name
        if schedules:
            assert spec["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    assert "REPLACE-WITH" in str(yaml_deployments()[NIGHTLY]["parameters"])


# -- serve.py ----------------------------------------------------------------------------------


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """deployments.serve, imported in the test (it imports Prefect; see processes.py), with
    the project root as the working directory (entry points are relative to it)."""
    monkeypatch.chdir(PROJECT_ROOT)
    return importlib.import_module("deployments.serve")


def test_serve_builds_the_yaml_deployments_with_schedules_and_limits(serve: ModuleType) -> None:
    for spec in yaml_deployments().values():
        served = serve.runner_deployment(spec)

        assert (served.name, served.entrypoint) == (spec["name"], spec["entrypoint"])
        assert served.parameters == spec["parameters"]
        assert sorted(served.tags) == sorted(spec["tags"])
        wanted = [(s["cron"], s["timezone"], s["active"]) for s in spec.get("schedules", [])]
        assert [
            (s.schedule.cron, s.schedule.timezone, s.active) for s in served.schedules or []
        ] == wanted
        limit = spec["concurrency_limit"]
        assert served.concurrency_limit == limit["limit"]
        assert served.concurrency_options.collision_strategy.value == limit["collision_strategy"]
        assert served.work_pool_name is None


def test_serve_refuses_deployments_with_different_env(serve: ModuleType) -> None:
    specs = list(yaml_deployments().values())
    specs[0] = {**specs[0], "work_pool": {"job_variables": {"env": {"IMAGEHOP_USERNAME": "x"}}}}

    with pytest.raises(serve.ServeError, match="different job-variable env"):
        serve.shared_env(specs)


def test_serve_will_not_start_without_an_api_url(
    serve: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # unset, even under a harness
        assert serve.main([]) == 2
    assert "PREFECT_API_URL is not set" in capsys.readouterr().err


def test_the_weekly_batch_fans_out_onto_a_deployment_of_the_yaml() -> None:
    deployments = yaml_deployments()
    batch = BatchRequest.model_validate(deployments[WEEKLY]["parameters"]["batch"])

    assert batch.run_as == "deployment-runs"
    assert batch.deployment in deployments
    limit = deployments[batch.deployment]["concurrency_limit"]["limit"]
    assert batch.max_parallel_transfers <= limit  # no image waits behind its own batch


# -- limits.py ---------------------------------------------------------------------------------


def test_limits_are_per_region_and_per_ordered_pair() -> None:
    wanted = wanted_limits(["dfw", "IAD", "DFW"], exports=1, imports=3, copies=None)

    assert wanted == [
        WantedLimit("imagehop-export-DFW", 1),
        WantedLimit("imagehop-export-IAD", 1),
        WantedLimit("imagehop-import-DFW", 3),
        WantedLimit("imagehop-import-IAD", 3),
        WantedLimit("imagehop-copy-DFW-IAD", 2, asked=False),  # the default, for new ones
        WantedLimit("imagehop-copy-IAD-DFW", 2, asked=False),
    ]


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--export", "2"], "--region"),
        (["--region", "Dallas!"], "not a region code"),
        (["--region", "DFW", "--copy", "0"], "give 1 to 64 slots"),
    ],
)
def test_limits_refuses_bad_arguments_before_touching_the_server(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert problem in capsys.readouterr().err


# -- examples ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["docker.prefect.yaml", "kubernetes.prefect.yaml"])
def test_examples_keep_the_deployments_and_settings_of_prefect_yaml(name: str) -> None:
    example = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))

    assert _without_pool(example["deployments"]) == _without_pool(prefect_yaml()["deployments"])
    pool = example["deployments"][0]["work_pool"]
    assert pool["job_variables"]["image"]
    env = pool["job_variables"]["env"]
    for setting in ("IMAGEHOP_USERNAME", "IMAGEHOP_API_KEY_SECRET_BLOCK"):
        assert env[setting] == prefect_yaml()["definitions"]["env"][setting]
    assert not SECRET_VARIABLES & set(env)
    assert "NOT TESTED" in (EXAMPLES / name).read_text(encoding="utf-8").splitlines()[0]


def _without_pool(deployments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in d.items() if k != "work_pool"} for d in deployments]


def test_dockerfile_installs_the_project_where_the_pull_step_looks() -> None:
    dockerfile = (EXAMPLES / "Dockerfile").read_text(encoding="utf-8")
    pull = yaml.safe_load((EXAMPLES / "docker.prefect.yaml").read_text(encoding="utf-8"))["pull"]

    directory = pull[0]["prefect.deployments.steps.set_working_directory"]["directory"]
    assert f"WORKDIR {directory}" in dockerfile
    assert "pip install --no-cache-dir ." in dockerfile
    assert Path(directory).is_absolute()


# -- the server's lease storage ----------------------------------------------------------------


def test_every_server_the_readme_starts_keeps_its_leases_in_files_as_the_tests_servers() -> None:
    readme = (PROJECT_ROOT / "deployments" / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:bash|ini)\n(.*?)```", readme, flags=re.DOTALL)
    starting = [block for block in blocks if "prefect server start" in block]
    setting = f"PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE={FILESYSTEM_LEASE_STORAGE}"

    assert len(starting) == 3  # Set up once; a team server on PostgreSQL, and its service
    for block in starting:
        assert setting in block.split("prefect server start")[0], block
    assert LEASE_STORAGE == {"PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": FILESYSTEM_LEASE_STORAGE}

"""Cloud profiles: a request names its clouds (IMAGEHOP_CLOUDS), never their credentials.

The worker here has no account of its own (no IMAGEHOP_USERNAME, no IMAGEHOP_TARGET_*): both
sides log in only as the profiles the request names, their secrets read from Prefect Secret
blocks named in the profiles.
"""

from __future__ import annotations

import json
import os
import sys
from types import SimpleNamespace

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client

from deployments import credentials
from imagehop import errors
from imagehop.flows.transfer_image import transfer_image
from imagehop.procedure import DryRunPlan, TransferRequest, TransferResult
from imagehop.tasks import cloud
from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import created, new_image
from tests.flows.run_record import run_record

pytestmark = [pytest.mark.cloud, pytest.mark.flow]


@pytest.fixture
def two_clouds(on_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> LocalCloud:
    """``legacy-dfw``: the main account, Rackspace Identity v2.0 with its API key;
    ``keystone-iad``: the other account, IAD's own Keystone v3 (as on Flex) with its
    application credential. The worker's own IMAGEHOP_* account is unset."""
    main, other = on_cloud.main, on_cloud.other
    Secret(value=main.api_key).save("imagehop-test-legacy-key", overwrite=True)
    Secret(value=other.app_credential_secret).save("imagehop-test-iad-secret", overwrite=True)
    profiles = {
        "legacy-dfw": {
            "identity_url": on_cloud.identity_url,
            "username": main.username,
            "api_key_secret_block": "imagehop-test-legacy-key",
        },
        "keystone-iad": {
            "auth_type": "v3applicationcredential",
            "identity_url": on_cloud.keystone_url("IAD"),
            "application_credential_id": other.app_credential_id,
            "application_credential_secret_block": "imagehop-test-iad-secret",
        },
    }
    for name in on_cloud.settings_env():  # the worker's own account (on_cloud set it)
        monkeypatch.delenv(name)
    monkeypatch.setenv("IMAGEHOP_CLOUDS", json.dumps(profiles))
    cloud.reset()
    return on_cloud


def _request(image_id: str, **fields: object) -> TransferRequest:
    return TransferRequest.model_validate(
        {"source_region": "DFW", "target_region": "IAD", "image_id": image_id,
         "source_cloud": "legacy-dfw", "target_cloud": "keystone-iad", **fields}
    )  # fmt: skip


def test_a_transfer_between_two_named_clouds(two_clouds: LocalCloud) -> None:
    """Each side logs in as its profile: the new image is the other account's, in IAD, and
    the run's parameters hold the clouds' names, never a secret."""
    image_id = new_image(two_clouds)
    assert not any(k.startswith("IMAGEHOP_TARGET_") for k in os.environ)

    state = transfer_image(_request(image_id), return_state=True)

    result = state.result()
    assert isinstance(result, TransferResult)
    assert (result.source_cloud, result.target_cloud) == ("legacy-dfw", "keystone-iad")
    other = two_clouds.other
    new = two_clouds.session(other).images("IAD", "GET", f"/images/{result.target_image_id}")
    assert new.json()["owner"] == other.tenant_id != two_clouds.main.tenant_id
    admin = two_clouds.admin
    assert admin.image_content_md5(result.target_image_id) == admin.image_content_md5(image_id)
    assert ("source cloud", "legacy-dfw") in [
        (r["item"], r["value"]) for r in result.summary_rows()
    ]

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    parameters = json.dumps(run.parameters)
    assert '"source_cloud": "legacy-dfw"' in parameters
    assert '"target_cloud": "keystone-iad"' in parameters
    for secret in (two_clouds.main.api_key, other.app_credential_secret):
        assert secret not in parameters and secret not in result.model_dump_json()


def test_the_plan_shows_each_sides_cloud(two_clouds: LocalCloud) -> None:
    plan = transfer_image(_request(new_image(two_clouds), dry_run=True))

    assert isinstance(plan, DryRunPlan)
    rows = {row["item"]: row["value"] for row in plan.summary_rows()}
    assert (rows["source cloud"], rows["target cloud"]) == ("legacy-dfw", "keystone-iad")


def test_an_unknown_cloud_is_refused_before_anything_is_created(two_clouds: LocalCloud) -> None:
    image_id = new_image(two_clouds)
    before = created(two_clouds)

    with pytest.raises(errors.UnknownCloudError) as caught:
        transfer_image(_request(image_id, target_cloud="flex-sjc3"))

    assert str(caught.value).startswith(
        "target_cloud 'flex-sjc3' is not a cloud of IMAGEHOP_CLOUDS (known: "
        "keystone-iad, legacy-dfw)"
    )
    assert created(two_clouds) == before


def test_one_cloud_on_both_sides_in_one_region_is_refused(two_clouds: LocalCloud) -> None:
    image_id = new_image(two_clouds)
    before = created(two_clouds)

    with pytest.raises(errors.PreflightError, match="pick another target region or another "):
        transfer_image(_request(image_id, target_region="DFW", target_cloud="legacy-dfw"))

    assert created(two_clouds) == before


def test_one_image_sent_to_two_accounts_iad_with_one_run_key_is_two_imports(
    two_clouds: LocalCloud,
) -> None:
    """The same image and run key into the main account's IAD, then into the other
    account's: the second run's import is its own, not the first run's cached import task
    (which the other account's cloud does not know)."""
    image_id = new_image(two_clouds)
    run_key = "two-accounts-" + image_id[:8]
    first = transfer_image(_request(image_id, target_cloud="legacy-dfw", run_key=run_key))
    state = transfer_image(_request(image_id, run_key=run_key), return_state=True)

    second = state.result()
    assert isinstance(first, TransferResult) and isinstance(second, TransferResult)
    owners = {
        result.target_image_id: two_clouds.session(account)
        .images("IAD", "GET", f"/images/{result.target_image_id}")
        .json()["owner"]
        for result, account in ((first, two_clouds.main), (second, two_clouds.other))
    }
    assert sorted(owners.values()) == sorted(
        [two_clouds.main.tenant_id, two_clouds.other.tenant_id]
    )
    states = run_record(state.state_details.flow_run_id).task_states()
    imports = [(name, state_name) for name, state_name in states if name == "import-IAD"]
    assert imports == [("import-IAD", "Completed")]


def test_credentials_py_stores_the_blocks_the_profiles_name(
    two_clouds: LocalCloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``credentials.py --clouds`` in a terminal: asked for each block's secret (without
    echo), it logs in as each profile and saves the blocks; a run naming those clouds then
    logs in with them. Nothing it prints holds a secret."""
    profiles = json.loads(os.environ["IMAGEHOP_CLOUDS"])
    profiles["legacy-dfw"]["api_key_secret_block"] = "imagehop-test-stored-key"
    profiles["keystone-iad"]["application_credential_secret_block"] = "imagehop-test-stored-iad"
    monkeypatch.setenv("IMAGEHOP_CLOUDS", json.dumps(profiles))
    cloud.reset()
    main, other = two_clouds.main, two_clouds.other
    answers = {"legacy-dfw": main.api_key, "keystone-iad": other.app_credential_secret}
    asked: list[tuple[str, bool]] = []

    def terminal(question: str, secret: bool) -> str:
        asked.append((question, secret))
        return next(value for name, value in answers.items() if f" of {name} " in question)

    monkeypatch.setattr(credentials, "_terminal_ask", terminal)
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(isatty=lambda: True))

    assert credentials.main(["--clouds"]) == 0

    printed = capsys.readouterr()
    assert [secret for _, secret in asked] == [True, True]
    assert printed.out.splitlines() == [
        f"login ok: cloud legacy-dfw: tenant {main.tenant_id}, Images in DFW, IAD",
        f"login ok: cloud keystone-iad: tenant {other.tenant_id}, Images in IAD",
        "saved Secret block 'imagehop-test-stored-key' (API key of legacy-dfw)",
        "saved Secret block 'imagehop-test-stored-iad' (Application credential secret of "
        "keystone-iad)",
    ]
    assert not any(key in printed.out + printed.err for key in answers.values())
    plan = transfer_image(_request(new_image(two_clouds), dry_run=True))
    assert isinstance(plan, DryRunPlan)

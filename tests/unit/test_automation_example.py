"""The Automation example in deployments/README.md is one Prefect accepts, and it reacts to
imagehop's failure event, not to its success events."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import Resource

from imagehop.tasks.events import COPIED, COPY_FAILED, PRUNED

README = Path(__file__).resolve().parents[2] / "deployments" / "README.md"


def example() -> AutomationCore:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n# copy-failed\.yaml\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 1, "one copy-failed.yaml example in the README"
    return AutomationCore.model_validate(yaml.safe_load(blocks[0]))


def test_the_example_parses_as_a_reactive_event_automation_that_notifies() -> None:
    automation = example()
    trigger = automation.trigger
    assert isinstance(trigger, EventTrigger) and trigger.posture == Posture.Reactive
    assert trigger.expect == {COPY_FAILED}
    action = automation.actions[0]
    assert isinstance(action, SendNotification)
    assert "event.payload.reason" in action.body


def test_the_example_matches_imagehops_failure_and_nothing_else() -> None:
    trigger = example().trigger
    assert isinstance(trigger, EventTrigger)
    assert COPY_FAILED in trigger.expect and not {COPIED, PRUNED} & trigger.expect
    assert trigger.match.includes([Resource({"prefect.resource.id": "imagehop.server.DFW.s-1"})])
    assert not trigger.match.includes([Resource({"prefect.resource.id": "prefect.flow-run.1"})])

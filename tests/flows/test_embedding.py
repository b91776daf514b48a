"""A data-platform team's project embeds imagehop: its own ``flows`` and ``tasks`` packages,
imagehop installed from a built wheel (not editable) in a fresh virtual environment, and
``transfer-image`` run as a subflow of the project's own flow against the local cloud."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import image, new_image

pytestmark = [pytest.mark.cloud, pytest.mark.flow]

REPO = Path(__file__).resolve().parents[2]

PROJECT = {
    "flows/__init__.py": "",
    "flows/nightly.py": '''
        """The team's own flow: imagehop's transfer as one step of a larger pipeline."""
        import json
        import sys

        from prefect import flow

        from imagehop.flows.transfer_image import transfer_image
        from imagehop.procedure import TransferRequest
        from imagehop.tasks import cloud
        from tasks.report import summarize


        class FastForward:
            """Sleeps skipped (the local cloud finishes in a second, polls wait 30 s)."""

            def __init__(self):
                import time
                self._time, self._offset = time, 0.0

            def time(self):
                return self._time.time() + self._offset

            def monotonic(self):
                return self._time.monotonic() + self._offset

            def sleep(self, seconds):
                self._offset += max(0.0, seconds)
                self._time.sleep(0.02)


        @flow(name="team-nightly")
        def nightly(image_id: str) -> dict:
            request = TransferRequest(source_region="DFW", target_region="IAD", image_id=image_id)
            return summarize(transfer_image(request))


        if __name__ == "__main__":
            with cloud.use_clock(FastForward()):
                print(json.dumps(nightly(sys.argv[1])))
        ''',
    "tasks/__init__.py": "",
    "tasks/report.py": """
        from prefect import task


        @task
        def summarize(result) -> dict:
            import imagehop
            return {
                "target_image_id": result.target_image_id,
                "segments": result.segments_total,
                "imagehop_from": imagehop.__file__,
            }
        """,
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    return next(out.glob("imagehop-*.whl"))


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with imagehop from the wheel; its dependencies are the ones
    this test run installed (their folder on the path, without the editable imagehop)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "tested_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    subprocess.run([*install, "--no-deps", "--no-index", str(wheel)], check=True, timeout=300)
    return python


def test_the_wheel_ships_only_imagehop_and_the_local_cloud(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith("-info")}
    assert top_level == {"imagehop", "imagehop_sandbox"}
    assert "imagehop/flows/transfer_image.py" in names and "imagehop/tasks/copy.py" in names


def test_a_project_with_its_own_flows_and_tasks_runs_transfer_image_as_a_subflow(
    fresh_venv: Path, on_cloud: LocalCloud, tmp_path: Path
) -> None:
    for relative, text in PROJECT.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    image_id = new_image(on_cloud, disk_bytes=1024 * 1024 + 5)
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    done = subprocess.run(
        [fresh_venv, "-m", "flows.nightly", image_id],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["imagehop_from"].startswith(str(fresh_venv.parent.parent))  # the wheel's
    assert summary["segments"] == 3  # a dynamic VHD of one 2 MiB block: 2 MiB + 3 KiB
    new = image(on_cloud, "IAD", summary["target_image_id"])
    assert new["status"] == "active" and new["com.imagehop.image-of"] == image_id

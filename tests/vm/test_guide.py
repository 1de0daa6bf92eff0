"""The guide's runnable steps, without a guest: all of them are in the guest's plan, and
the extractor itself finds what it should and refuses what it cannot run."""

from __future__ import annotations

import pytest

from tests.vm import guide
from tests.vm.guest import STEPS
from tests.vm.server import other_user_plan, owner_plan


def test_every_marked_step_of_the_guide_runs_in_the_owners_guest() -> None:
    marked = guide.steps()
    assert {"mount-bundle", "connect", "backup", "schedule-enable", "restore"} <= set(marked)
    planned = [s.name for s in owner_plan()]
    assert set(marked) <= set(planned), set(marked) - set(planned)


def test_the_guests_steps_exist_and_never_shadow_the_guides() -> None:
    marked = guide.steps()
    harness = {p.stem for p in STEPS.glob("*.sh")}
    assert not harness & set(marked)
    plans = [owner_plan(), owner_plan(fakes=("198.18.20.101",)), other_user_plan("bob", "k1")]
    for plan in plans:
        for step in plan:
            assert step.name in marked or step.name in harness, step.name
        keys = [step.key for step in plan]
        assert len(keys) == len(set(keys)), keys  # the test finds each step by its key


def test_the_guides_connect_runs_the_bundles_own_script_from_the_disk() -> None:
    marked = guide.steps()
    assert marked["connect"] == "sh /mnt/kopia-bundle/connect-linux.sh\n"
    assert "/dev/disk/by-label/kopia-bundle" in marked["mount-bundle"]
    assert "--server-cert-fingerprint" not in "".join(marked.values())


def test_the_extractor_reads_a_marked_block_as_written() -> None:
    text = "intro\n<!-- vm-test: one -->\n```sh\necho 'a  b'\n\nls\n```\n```sh\nnot marked\n```\n"
    assert guide.steps(text) == {"one": "echo 'a  b'\n\nls\n"}


@pytest.mark.parametrize(
    "text",
    [
        "<!-- vm-test: one -->\n\n```sh\nls\n```\n",  # not right after the marker
        "<!-- vm-test: one -->\n```powershell\nls\n```\n",  # not a shell block
        "<!-- vm-test: one -->\n```sh\nls\n",  # never closes
        "<!-- vm-test: one -->\n```sh\nls\n```\n<!-- vm-test: one -->\n```sh\nls\n```\n",
    ],
)
def test_the_extractor_refuses_what_it_cannot_run(text: str) -> None:
    with pytest.raises(guide.GuideError):
        guide.steps(text)

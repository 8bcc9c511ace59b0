"""The README's rotation rehearsal, run as written against ``omni-secrets dev`` (``make run``).

The ```sh block after "A whole rotation can be rehearsed there" is taken from README.md and run
in bash after ``source <data-dir>/env``, through the installed command; only ``PREVIEW_ID`` is
filled in with the id the preview printed. Each part must exit 0 and print what the README says.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from tests.contract.test_dev_cli_end_to_end import DevService, Result, dev_service

__all__ = ["dev_service"]  # the module-scoped fixture: a dev service of this module's own
README = Path(__file__).resolve().parents[2] / "README.md"


def script(dev: DevService, text: str) -> Result:
    """``text`` in ``bash -e`` after ``source <data-dir>/env``, as the operator types it."""
    env_file = shlex.quote(str(dev.data_dir / "env"))
    done = subprocess.run(
        ["bash", "-e", "-c", f"source {env_file}\n{text}"],
        cwd=dev.cwd,
        env=dev.env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def rehearsal_block() -> list[str]:
    text = README.read_text()
    start = text.index("A whole rotation can be rehearsed there")
    block = text[start:].split("```sh\n", 1)[1].split("```", 1)[0]
    return block.splitlines()


def test_the_readme_rehearsal_runs_as_written(dev_service: DevService) -> None:
    lines = rehearsal_block()
    (split,) = [i for i, line in enumerate(lines) if "rotation preview" in line]
    first, rest = "\n".join(lines[: split + 1]), "\n".join(lines[split + 1 :])
    assert "PREVIEW_ID" in rest and "rotation rollback" in rest and "versions retire" in rest

    added = script(dev_service, first)
    assert added.code == 0, added.err
    assert added.out.count("added apex-omni-api-") == 3
    match = re.search(r"omni-secrets rotation commit ([0-9a-f]{32})", added.err)
    assert match, added.err
    done = script(dev_service, rest.replace("PREVIEW_ID", match.group(1)))
    assert done.code == 0, done.out + done.err
    out = done.out
    assert "committed api_credentials: api_key v2, api_secret v2, api_passphrase v2" in out
    assert out.count("ApeX accepted the served credentials") == 2
    listed = [line.split() for line in out.splitlines() if re.match(r"^[12] +ENABLED", line)]
    assert [row[0:1] + row[3:] for row in listed] == [["2", "current", "served"], ["1", "previous"]]
    assert "rolled back api_credentials: api_key v1, api_secret v1, api_passphrase v1" in out
    assert "rolled back api_credentials: api_key v2, api_secret v2, api_passphrase v2" in out
    for secret in ("api-key", "api-secret", "api-passphrase"):
        assert f"nothing to retire in apex-omni-{secret} (kept current=2, previous=1)" in out
    assert "fake-new-api" not in out + done.err

"""An unused enrollment token can be listed and revoked (issue 12 finding: it could not)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from canhgac.cli import main
from collector.auth import AuthStore, EnrollmentError


def test_list_and_revoke_an_unused_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = ["--state-dir", str(tmp_path)]
    assert main(["collector", "enroll-token", "--system", "cong-ttdt", *state]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    token_id = AuthStore.token_id(token)
    assert f"revoke-token {token_id}" in out.err

    assert main(["collector", "enroll-tokens", "--format", "json", *state]) == 0
    listed = orjson.loads(capsys.readouterr().out)
    assert [(t["id"], t["system_id"], t["uses_left"]) for t in listed] == [(token_id, "cong-ttdt", 1)]
    assert token not in str(listed)  # the token itself is never shown again

    assert main(["collector", "revoke-token", token_id, *state]) == 0
    assert main(["collector", "revoke-token", token_id, *state]) == 2  # already spent
    assert main(["collector", "revoke-token", "zz", *state]) == 2
    capsys.readouterr()
    auth = AuthStore(tmp_path / "auth.db")
    with pytest.raises(EnrollmentError):
        auth.enroll(token, "web-01")
    assert auth.enroll_tokens() == []
    auth.close()

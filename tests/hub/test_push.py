"""``push`` against a real Hub server on 127.0.0.1 (tests/hub/hub_server.py)."""

from __future__ import annotations

import logging

import pytest
from hubtools import TOKEN, folder_bytes

from kodolly.errors import LicenseError, PushError
from kodolly.hub import build_folder, push


@pytest.fixture
def alpaca_folder(alpaca_output, tmp_path):
    folder = tmp_path / "hub-alpaca"
    build_folder(alpaca_output, folder, max_shard_rows=4)
    return folder


@pytest.fixture
def mixed_folder(mixed_output, tmp_path):
    folder = tmp_path / "hub-mixed"
    build_folder(mixed_output, folder)
    return folder


@pytest.fixture
def permissive_folder(mixed_output, tmp_path):
    """Only the Apache-2.0 (kullm) rows of the mixed fixture, with a manifest that matches."""
    import json

    rows = [json.loads(line) for line in mixed_output.read_text("utf-8").splitlines()]
    kept = [r for r in rows if r["source"] == "kullm"]
    mixed_output.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), "utf-8")
    mpath = mixed_output.with_name("mixed_rows.manifest.json")
    manifest = json.loads(mpath.read_text("utf-8"))
    manifest["counts"]["written"] = len(kept)
    mpath.write_text(json.dumps(manifest), "utf-8")
    folder = tmp_path / "hub-permissive"
    build_folder(mixed_output, folder)
    return folder


def test_push_uploads_the_folder_byte_for_byte_in_one_commit(hub, alpaca_folder, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    warnings: list[str] = []
    result = push(alpaca_folder, "kodolly/ko-alpaca", private=True, warn=warnings.append)

    repo = hub.state.repos["kodolly/ko-alpaca"]
    assert repo.private is True
    assert repo.branches["main"] == folder_bytes(alpaca_folder)
    assert len(repo.commits) == 1 and repo.commits[0]["summary"] == "Upload dataset with kodolly 0.1.0"
    # parquet shards go through the LFS batch API + PUT, small text files inline (as on the Hub)
    assert hub.state.arrived_as == {
        "README.md": "regular",
        "data/train-00000-of-00002.parquet": "lfs",
        "data/train-00001-of-00002.parquet": "lfs",
        "kodolly.manifest.json": "regular",
    }
    assert hub.state.count("PUT", r"^/lfs-storage/") == 2
    assert hub.state.count("POST", r"/api/repos/create$") == 1
    assert result.commit_oid == repo.commits[0]["oid"] and result.attempts == 3  # create, info, upload
    assert result.files == sorted(folder_bytes(alpaca_folder))
    # the card's licence is CC BY-NC: a private push goes ahead with a warning
    assert any("private push of restricted sources" in w and "alpaca (CC BY-NC 4.0, 6 rows)" in w for w in warnings)
    # every API call carried the token, and it appears in no output, log or uploaded file
    api_auth = [a for (m, p), a in zip(hub.state.requests, hub.state.seen_auth) if p.startswith("/api/")]
    assert api_auth and set(api_auth) == {f"Bearer {TOKEN}"}
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err + caplog.text + " ".join(warnings) + repr(result)
    assert all(TOKEN.encode() not in data for data in repo.branches["main"].values())


def test_push_to_a_revision_creates_the_branch(hub, permissive_folder):
    push(permissive_folder, "kodolly/ko", revision="v1", private=False)
    repo = hub.state.repos["kodolly/ko"]
    assert repo.private is False
    assert repo.branches["main"] == {}
    assert repo.branches["v1"] == folder_bytes(permissive_folder)
    assert hub.state.count("POST", r"/branch/v1$") == 1


def test_public_push_of_cc_by_nd_set_is_refused_before_any_request(hub, mixed_folder):
    with pytest.raises(LicenseError) as err:
        push(mixed_folder, "kodolly/mixed", private=False)
    msg = str(err.value)
    assert msg.startswith("refusing a public push: these sources' licences restrict sharing this set:")
    assert "  - korquad1 (CC BY-ND 2.0 KR, 3 rows): forbids sharing derivatives (a converted or filtered set is one)" in msg
    assert "  - aihub (AI Hub terms, 2 rows): forbids redistributing the data" in msg
    assert "  - koalpaca (CC BY-NC 4.0, 1 rows): allows non-commercial use only" in msg
    assert "kullm" not in msg
    assert "--i-have-permission" in msg and "--private" in msg
    assert hub.state.requests == [] and hub.state.repos == {}


def test_override_allows_the_public_push(hub, mixed_folder):
    warnings: list[str] = []
    push(mixed_folder, "kodolly/mixed", private=False, i_have_permission=True, warn=warnings.append)
    assert hub.state.repos["kodolly/mixed"].private is False
    assert hub.state.repos["kodolly/mixed"].branches["main"] == folder_bytes(mixed_folder)
    assert warnings[0].startswith("public push of restricted sources allowed by --i-have-permission")


def test_private_push_of_restricted_set_warns(hub, mixed_folder):
    warnings: list[str] = []
    push(mixed_folder, "kodolly/mixed", private=True, warn=warnings.append)
    assert hub.state.repos["kodolly/mixed"].private is True
    assert len(warnings) == 1 and "korquad1 (CC BY-ND 2.0 KR, 3 rows)" in warnings[0]


def test_transient_500s_are_retried(hub, permissive_folder):
    hub.state.fail("POST", r"/api/repos/create$", 500)
    hub.state.fail("POST", r"/commit/main$", 503)
    messages: list[str] = []
    result = push(permissive_folder, "kodolly/ko", retry_wait=0.01, warn=messages.append)
    assert hub.state.count("POST", r"/api/repos/create$") == 2
    assert hub.state.count("POST", r"/commit/main$") == 2
    assert result.attempts == 5  # create x2, info, upload x2
    assert hub.state.repos["kodolly/ko"].branches["main"] == folder_bytes(permissive_folder)
    assert sum("transient error" in m for m in messages) == 2


def test_403_is_not_retried(hub, permissive_folder):
    hub.state.fail("POST", r"/api/repos/create$", 403, times=10)
    with pytest.raises(PushError, match=r"create repo failed for kodolly/ko: HTTP 403 \(does HF_TOKEN have write access"):
        push(permissive_folder, "kodolly/ko", retry_wait=0.01)
    assert hub.state.count("POST", r"/api/repos/create$") == 1
    assert hub.state.count("POST", r"/commit/") == 0


def test_retries_give_up_after_the_limit(hub, permissive_folder):
    hub.state.fail("POST", r"/api/repos/create$", 502, times=10)
    with pytest.raises(PushError, match="create repo failed for kodolly/ko: HTTP 502"):
        push(permissive_folder, "kodolly/ko", retries=2, retry_wait=0.01)
    assert hub.state.count("POST", r"/api/repos/create$") == 3


def test_a_wrong_token_is_a_clear_401_and_never_printed(hub, permissive_folder, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrongWrongWrong")
    with pytest.raises(PushError) as err:
        push(permissive_folder, "kodolly/ko", retry_wait=0.01)
    assert "HTTP 401 (is HF_TOKEN valid?)" in str(err.value)
    assert "hf_wrongWrongWrong" not in str(err.value)
    assert hub.state.count("POST", r"/api/repos/create$") == 1


def test_repush_with_fewer_shards_removes_the_stale_ones(hub, alpaca_output, tmp_path):
    folder = tmp_path / "hub"
    build_folder(alpaca_output, folder, max_shard_rows=2)
    push(folder, "kodolly/ko", private=True)
    assert sum(p.startswith("data/") for p in hub.state.repos["kodolly/ko"].branches["main"]) == 3
    build_folder(alpaca_output, folder, overwrite=True)
    push(folder, "kodolly/ko", private=True)
    repo = hub.state.repos["kodolly/ko"]
    assert repo.branches["main"] == folder_bytes(folder)
    assert len(repo.commits) == 2


def test_missing_token_is_refused(hub, permissive_folder, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(PushError, match="HF_TOKEN is not set"):
        push(permissive_folder, "kodolly/ko")
    assert hub.state.requests == []


def test_a_folder_holding_the_token_is_not_uploaded(hub, permissive_folder):
    from kodolly.errors import ConfigError

    (permissive_folder / "notes.txt").write_text(f"token={TOKEN}\n")
    with pytest.raises(ConfigError, match="notes.txt: contains the HF_TOKEN value"):
        push(permissive_folder, "kodolly/ko")
    assert hub.state.requests == []


def test_dolly_only_rows_take_their_licence_from_the_manifest(hub, tmp_path):
    """Rows written with --dolly-only have no licence column; the manifest's converter licence guards them."""
    import kodolly
    from hubtools import FIXTURES

    out = tmp_path / "strict.parquet"
    kodolly.convert(FIXTURES / "ko_alpaca.json", "alpaca", out, options={"license": "CC BY-ND 2.0 KR"}, dolly_only=True)
    folder = tmp_path / "hub"
    result = build_folder(out, folder)
    assert result.schema.names == ["instruction", "context", "response", "category"]
    with pytest.raises(LicenseError, match=r"  - alpaca \(CC BY-ND 2.0 KR, 6 rows\): forbids sharing derivatives"):
        push(folder, "kodolly/strict", private=False)
    assert hub.state.requests == []


def test_private_push_into_an_existing_public_repo_is_guarded_as_public(hub, mixed_folder, permissive_folder):
    push(permissive_folder, "kodolly/ko", private=False)
    assert hub.state.repos["kodolly/ko"].private is False
    commits_before = len(hub.state.repos["kodolly/ko"].commits)
    with pytest.raises(LicenseError, match="refusing a public push"):
        push(mixed_folder, "kodolly/ko", private=True)
    assert len(hub.state.repos["kodolly/ko"].commits) == commits_before
    assert hub.state.count("POST", r"/preupload/") == 1  # only the first push got that far


def test_public_push_into_an_existing_private_repo_says_it_stays_private(hub, permissive_folder):
    push(permissive_folder, "kodolly/ko", private=True)
    warnings: list[str] = []
    result = push(permissive_folder, "kodolly/ko", private=False, warn=warnings.append)
    assert result.private is True
    assert "kodolly/ko already exists and is private; its visibility is not changed" in warnings


def test_offline_mode_is_not_retried(hub, permissive_folder, monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    messages: list[str] = []
    with pytest.raises(PushError, match="create repo failed for kodolly/ko: error: OfflineModeIsEnabled"):
        push(permissive_folder, "kodolly/ko", retry_wait=5, warn=messages.append)
    assert messages == [] and hub.state.requests == []


def test_connection_refused_is_retried(permissive_folder, monkeypatch, tmp_path):
    """Nothing listens on the endpoint: a connection error is transient, retried, then reported."""
    import socket

    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    messages: list[str] = []
    with pytest.raises(PushError, match="create repo failed for kodolly/ko: error: ConnectError"):
        push(permissive_folder, "kodolly/ko", endpoint=f"http://127.0.0.1:{port}", retries=2, retry_wait=0.01,
             warn=messages.append)
    assert sum("transient error" in m for m in messages) == 2


def test_public_push_without_a_pii_step_warns_and_private_does_not(hub, permissive_folder):
    warnings: list[str] = []
    push(permissive_folder, "kodolly/pub", private=False, warn=warnings.append)
    assert [w for w in warnings if w.startswith("public push: the manifest shows no personal-data step")]
    warnings.clear()
    push(permissive_folder, "kodolly/priv", private=True, warn=warnings.append)
    assert not [w for w in warnings if "personal-data" in w]

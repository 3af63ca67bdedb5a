"""Pushing to the Hub, against tests/hub_standin.py: a local HTTP server that STANDS IN for the Hugging Face
Hub (which tests cannot reach). The client side is the real one: ``python -m egail.data build
--push-to-hub`` runs in a subprocess with ``HF_ENDPOINT`` pointing at the stand-in, through ``datasets`` and
``huggingface_hub`` unchanged; the stand-in records and checks what it receives."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import datasets
import pyarrow.parquet as pq
import pytest

from egail.data import load_trajectories
from tests.hub_standin import HubStandIn

REPO = "egail-team/expert-trajectories"


@pytest.fixture
def hub():
    with HubStandIn() as server:
        yield server


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def test_build_and_push_to_a_standin_hub(hub, tmp_path):
    env = {**os.environ, **hub.env(), "HF_HOME": str(tmp_path / "hf-home")}
    out = tmp_path / "out"
    run([sys.executable, "-m", "egail.data", "build", "--source", "embedded", "--out", str(out),
         "--push-to-hub", REPO, "--private", "--no-progress"], env)  # fmt: skip
    assert hub.unhandled == []

    repo = hub.repo(REPO, "dataset")
    assert repo.private
    files = hub.files(REPO, "dataset")
    local = datasets.load_from_disk(str(out))
    shards = {f"data/{split}-00000-of-00001.parquet": split for split in local}
    assert set(files) == {".gitattributes", "README.md", *shards}
    for path, split in shards.items():  # the shards hold exactly the rows saved locally
        assert pq.read_table(io.BytesIO(files[path])).to_pylist() == local[split].to_list()
    assert files["README.md"] == (out / "README.md").read_bytes()  # our card, not the one datasets writes

    commits = hub.commits(REPO, "dataset")
    assert [c.message for c in commits] == [
        "initial commit",
        "Upload expert trajectories",
        "Dataset card: sources, licenses, counts, staggering rule",
    ]
    upload = {op["value"]["path"]: op["key"] for op in commits[1].operations[1:]}
    assert upload == {**dict.fromkeys(shards, "lfsFile"), "README.md": "file"}  # shards went through LFS

    # The pushed files, as a local folder in the Hub's layout, load back as the same dataset.
    copy = tmp_path / "hub-copy"
    for path, content in files.items():
        (copy / path).parent.mkdir(parents=True, exist_ok=True)
        (copy / path).write_bytes(content)
    from_copy = load_trajectories(copy)
    assert {split: from_copy[split].to_list() for split in from_copy} == {s: local[s].to_list() for s in local}

    # And back: load_trajectories(repo id) through datasets' Hub code, from an empty cache.
    code = f"from egail.data import load_trajectories as load; print({{k: len(v) for k, v in load({REPO!r}).items()}})"
    proc = run([sys.executable, "-c", code], env)
    assert proc.stdout.strip().splitlines()[-1] == str({split: len(local[split]) for split in local})


def test_standin_checks_what_it_receives(hub):
    def request(method, path, body=b"", token=hub.token):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        req = urllib.request.Request(hub.url + path, data=body or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    create = json.dumps({"name": "m", "organization": "org"}).encode()
    assert request("POST", "/api/repos/create", create, token=None)[0] == 401
    assert request("POST", "/api/repos/create", create)[0] == 200
    assert request("POST", "/api/repos/create", create)[0] == 409
    assert request("PUT", "/__lfs__/" + "0" * 64 + "?size=3", b"abc")[0] == 400  # content does not hash to oid
    commit = b"\n".join(json.dumps(line).encode() for line in [
        {"key": "header", "value": {"summary": "x"}},
        {"key": "lfsFile", "value": {"path": "w.safetensors", "algo": "sha256", "oid": "1" * 64, "size": 3}},
    ])  # fmt: skip
    status, body = request("POST", "/api/models/org/m/commit/main", commit)
    assert status == 400 and b"was never uploaded" in body
    assert request("GET", "/api/models/org/nothing")[0] == 404
    assert hub.files("org/m") == {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}


def test_standin_takes_model_repos_through_the_real_client(hub, tmp_path, monkeypatch):
    from huggingface_hub import HfApi, constants, hf_hub_download

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the stand-in speaks LFS, not Xet
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # tests are offline; the stand-in is on loopback
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"a": 1}')
    (tmp_path / "model" / "model.safetensors").write_bytes(b"\x00" * 1000)
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo("org/policy", private=True)
    api.upload_folder(folder_path=tmp_path / "model", repo_id="org/policy", commit_message="policy")
    assert hub.files("org/policy")["model.safetensors"] == b"\x00" * 1000
    assert [op["key"] for op in hub.commits("org/policy")[-1].operations[1:]] == ["file", "lfsFile"]
    path = hf_hub_download("org/policy", "config.json", endpoint=hub.url, token=hub.token, cache_dir=tmp_path / "c")
    assert open(path).read() == '{"a": 1}'

"""A stand-in for the Hugging Face Hub, for tests: a small HTTP server on 127.0.0.1.

It is NOT the Hub. It implements just the part of the Hub's HTTP API that the real ``huggingface_hub``
client (and ``datasets`` / ``transformers`` through it) calls to create a repo, push commits and read
back what it pushed: repo create/info, preupload, the git-LFS batch API and a PUT upload target, the
NDJSON commit endpoint, tree and paths-info listings, and file resolve (GET/HEAD, with ranges). Model,
dataset and space repos are supported. The client code path is the real one: point it here with
``HF_ENDPOINT=server.url``, ``HF_TOKEN=server.token`` and ``HF_HUB_DISABLE_XET=1`` (the stand-in does not
speak the Xet storage protocol), preferably in a subprocess, because ``huggingface_hub`` and ``datasets``
read ``HF_ENDPOINT`` when they are imported. A Space has its sdk and its variables (``add_space_variable``); repos
can be deleted.

The server checks what it receives like the Hub would: the token on every write, LFS uploads against their
sha256 and size, commits that refer to LFS objects it never received, and ``parentCommit``. Every commit
is recorded; tests assert on :meth:`HubStandIn.files` (path -> bytes at the head of ``main``),
:attr:`HubStandIn.commits` and :attr:`HubStandIn.unhandled` (requests it had no answer for).

    with HubStandIn() as hub:
        subprocess.run([...], env={**os.environ, **hub.env()})
        files = hub.files("user/name", repo_type="dataset")
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

REPO_TYPES = ("model", "dataset", "space")
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
#: Files the stand-in asks the client to send through LFS, as the Hub does for binary formats.
_LFS_SUFFIXES = (".parquet", ".arrow", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".h5",
                 ".msgpack", ".npy", ".npz", ".pkl", ".zip", ".gz", ".tar")  # fmt: skip
_LFS_MIN_SIZE = 10 * 1024 * 1024


def git_blob_oid(content: bytes) -> str:
    """git's object id of a file, which the Hub reports for regular (non-LFS) files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class StoredFile:
    content: bytes
    lfs: bool

    @property
    def oid(self) -> str:
        return hashlib.sha256(self.content).hexdigest() if self.lfs else git_blob_oid(self.content)


@dataclass
class Commit:
    oid: str
    message: str
    files: dict[str, StoredFile]  # the whole tree after this commit
    operations: list[dict[str, Any]]  # the NDJSON lines received, with file contents left out


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: list[Commit] = field(default_factory=list)
    sdk: str | None = None  # a Space's
    variables: dict[str, dict[str, str]] = field(default_factory=dict)  # a Space's, key -> {value, description}

    def at(self, revision: str) -> Commit | None:
        if revision in ("main", "refs/heads/main"):
            return self.commits[-1]
        return next((c for c in reversed(self.commits) if c.oid.startswith(revision) and len(revision) >= 7), None)


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, body: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.body = status, message, code, body or {}


class HubStandIn:
    """The server; use as a context manager, or call :meth:`start` and :meth:`stop`."""

    def __init__(self, token: str = "hf_standin_write_token", user: str = "standin-user") -> None:
        self.token = token
        self.user = user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.unhandled: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle and inspection

    def start(self) -> HubStandIn:
        hub = self

        class Handler(_Handler):
            standin = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HubStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """Environment for a client process that should talk to this stand-in (and nothing else)."""
        return {
            "HF_ENDPOINT": self.url,
            "HF_TOKEN": self.token,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_OFFLINE": "0",
            "HF_DATASETS_OFFLINE": "0",
            "TRANSFORMERS_OFFLINE": "0",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_ETAG_TIMEOUT": "5",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        commit = self.repo(repo_id, repo_type).at(revision)
        assert commit is not None, f"no revision {revision} in {repo_type} {repo_id}"
        return {path: stored.content for path, stored in commit.files.items()}

    def commits(self, repo_id: str, repo_type: str = "model") -> list[Commit]:
        return list(self.repo(repo_id, repo_type).commits)

    # ------------------------------------------------------------------ the API, as plain functions

    def _repo(self, repo_type: str, repo_id: str, authorised: bool) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not authorised):
            raise HubError(404, f"Repository Not Found for {repo_type} {repo_id}", "RepoNotFound")
        return repo

    def _commit_at(self, repo: Repo, revision: str) -> Commit:
        commit = repo.at(unquote(revision))
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def create_repo(self, body: dict[str, Any]) -> dict[str, Any]:
        repo_type = body.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"invalid repo type {repo_type!r}")
        name = body.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name):
            raise HubError(400, f"invalid repo name {name!r}")
        repo_id = f"{body.get('organization') or self.user}/{name}"
        private = body.get("private") is True or body.get("visibility") == "private"
        url = f"{self.url}/{_URL_PREFIX[repo_type]}{repo_id}"
        with self._lock:
            if (repo_type, repo_id) in self.repos:
                raise HubError(409, "You already created this repo", None, {"url": url})  # as the Hub answers
            attributes = StoredFile(b"*.parquet filter=lfs diff=lfs merge=lfs -text\n", lfs=False)
            initial = Commit(_oid("initial", repo_id), "initial commit", {".gitattributes": attributes}, [])
            sdk = body.get("sdk")
            if repo_type == "space" and sdk not in ("gradio", "docker", "static"):
                raise HubError(400, f"a Space needs an sdk (gradio, docker or static), got {sdk!r}")
            self.repos[(repo_type, repo_id)] = Repo(repo_type, repo_id, private, [initial], sdk=sdk)
        return {"url": url, "name": repo_id, "id": repo_id}

    def delete_repo(self, body: dict[str, Any]) -> None:
        repo_id = f"{body.get('organization') or self.user}/{body.get('name')}"
        with self._lock:
            if self.repos.pop((body.get("type") or "model", repo_id), None) is None:
                raise HubError(404, f"Repository Not Found for {repo_id}", "RepoNotFound")

    def add_variable(self, repo: Repo, body: dict[str, Any]) -> dict[str, Any]:
        if repo.repo_type != "space" or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(body.get("key", ""))):
            raise HubError(400, f"invalid Space variable {body.get('key')!r} for {repo.repo_type} {repo.repo_id}")
        with self._lock:
            repo.variables[body["key"]] = {"value": str(body.get("value", "")), "description": body.get("description")}
        return {key: {"value": v["value"], "description": v["description"]} for key, v in repo.variables.items()}

    def repo_info(self, repo: Repo, revision: str) -> dict[str, Any]:
        commit = self._commit_at(repo, revision)
        return {
            "id": repo.repo_id,
            "_id": _oid("id", repo.repo_id)[:24],
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "lastModified": "2025-01-01T00:00:00.000Z",
            "createdAt": "2025-01-01T00:00:00.000Z",
            "tags": [],
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
            **({"sdk": repo.sdk} if repo.sdk else {}),
        }

    def preupload(self, repo: Repo, revision: str, body: dict[str, Any]) -> dict[str, Any]:
        commit = self._commit_at(repo, revision)
        answers = []
        for item in body.get("files", []):
            path, size = item["path"], int(item["size"])
            lfs = path.endswith(_LFS_SUFFIXES) or size >= _LFS_MIN_SIZE
            answer = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            if path in commit.files:
                answer["oid"] = commit.files[path].oid
            answers.append(answer)
        return {"files": answers, "commitOid": commit.oid}

    def lfs_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("operation") != "upload":
            raise HubError(400, "the stand-in only accepts LFS uploads")
        objects = []
        for item in body.get("objects", []):
            oid, size = item["oid"], int(item["size"])
            answer: dict[str, Any] = {"oid": oid, "size": size}
            if oid not in self.lfs_objects:
                answer["actions"] = {"upload": {"href": f"{self.url}/__lfs__/{oid}?size={size}", "header": {}}}
            objects.append(answer)
        return {"transfer": "basic", "objects": objects}

    def lfs_put(self, oid: str, size: int, content: bytes) -> None:
        if len(content) != size or hashlib.sha256(content).hexdigest() != oid:
            raise HubError(400, f"LFS object {oid}: received {len(content)} bytes that do not hash to it")
        with self._lock:
            self.lfs_objects[oid] = content

    def commit(self, repo: Repo, revision: str, ndjson: bytes) -> dict[str, Any]:
        lines = [json.loads(line) for line in ndjson.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "a commit starts with a header line")
        header = lines[0]["value"]
        with self._lock:
            head = self._commit_at(repo, revision)
            if unquote(revision) not in ("main", "refs/heads/main"):
                raise HubError(400, "the stand-in commits to main only")
            parent = header.get("parentCommit")
            if parent and not head.oid.startswith(parent):
                raise HubError(412, f"parentCommit {parent} is not the head of main ({head.oid})")
            files = dict(head.files)
            received = [{"key": "header", "value": header}]
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                path = value["path"]
                if key == "file":
                    if value.get("encoding") != "base64":
                        raise HubError(400, f"{path}: unknown encoding {value.get('encoding')!r}")
                    files[path] = StoredFile(base64.b64decode(value["content"]), lfs=False)
                elif key == "lfsFile":
                    content = self.lfs_objects.get(value["oid"])
                    if content is None:
                        raise HubError(400, f"{path}: LFS object {value['oid']} was never uploaded")
                    files[path] = StoredFile(content, lfs=True)
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise HubError(404, f"{path}: A file with this name doesn't exist", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    for name in [name for name in files if name.startswith(prefix)]:
                        del files[name]
                else:
                    raise HubError(400, f"the stand-in does not support {key!r} commit operations")
                received.append({"key": key, "value": {k: v for k, v in value.items() if k != "content"}})
            oid = _oid(head.oid, json.dumps(received, sort_keys=True))
            repo.commits.append(Commit(oid, header.get("summary", ""), files, received))
        url = f"{self.url}/{_URL_PREFIX[repo.repo_type]}{repo.repo_id}/commit/{oid}"
        return {"success": True, "commitOid": oid, "commitUrl": url, "pullRequestUrl": None}

    def tree(self, repo: Repo, revision: str, path: str, recursive: bool) -> list[dict[str, Any]]:
        commit = self._commit_at(repo, revision)
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        if prefix and not any(name.startswith(prefix) for name in commit.files):
            raise HubError(404, f"{path} does not exist on {revision}", "EntryNotFound")
        entries: dict[str, dict[str, Any]] = {}
        for name in sorted(commit.files):
            if not name.startswith(prefix):
                continue
            parts = name[len(prefix) :].split("/")
            for depth in range(1, len(parts)):  # the folders on the way
                folder = prefix + "/".join(parts[:depth])
                if recursive or depth == 1:
                    entries.setdefault(folder, _folder_entry(folder, commit))
            if recursive or len(parts) == 1:
                entries[name] = _file_entry(name, commit.files[name])
        return list(entries.values())

    def paths_info(self, repo: Repo, revision: str, paths: list[str]) -> list[dict[str, Any]]:
        commit = self._commit_at(repo, revision)
        answer = []
        for path in paths:
            path = path.strip("/")
            if path in commit.files:
                answer.append(_file_entry(path, commit.files[path]))
            elif any(name.startswith(path + "/") for name in commit.files):
                answer.append(_folder_entry(path, commit))
        return answer


def _oid(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def _file_entry(path: str, stored: StoredFile) -> dict[str, Any]:
    size = len(stored.content)
    entry: dict[str, Any] = {"type": "file", "path": path, "size": size, "oid": git_blob_oid(stored.content)}
    if stored.lfs:
        entry["lfs"] = {"oid": stored.oid, "size": len(stored.content), "pointerSize": 134}
    return entry


def _folder_entry(path: str, commit: Commit) -> dict[str, Any]:
    return {"type": "directory", "path": path, "size": 0, "oid": _oid(commit.oid, path)}


_API = re.compile(
    r"/api/(?P<type>model|dataset|space)s/(?P<repo>[^/]+(?:/[^/]+)?)"
    r"(?:/(?P<action>revision|preupload|commit|tree|paths-info|variables)(?:/(?P<rest>.*))?)?"
)
_RESOLVE = re.compile(r"/(?:(?P<type>dataset|space)s/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<path>.+)")
_LFS_BATCH = re.compile(r"/(?:(?P<type>dataset|space)s/)?(?P<repo>[^/]+/[^/]+?)\.git/info/lfs/objects/batch")


class _Handler(BaseHTTPRequestHandler):
    standin: HubStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ plumbing

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers, then the blank line
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorised(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {self.standin.token}"

    def _require_token(self) -> None:
        if not self._authorised():
            raise HubError(401, "Invalid credentials in Authorization header")

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/json", headers=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value: Any, status: int = 200) -> None:
        self._send(status, json.dumps(value).encode())

    def _dispatch(self, method: str) -> None:
        hub = self.standin
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        hub.requests.append((method, url.path))
        body = self._body() if method in ("POST", "PUT", "DELETE") else b""
        try:
            if not self._route(method, path, query, body):
                hub.unhandled.append((method, self.path))
                raise HubError(501, f"the Hub stand-in does not implement {method} {url.path}")
        except HubError as error:
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._send(error.status, json.dumps({"error": error.message, **error.body}).encode(), headers=headers)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bool:
        hub = self.standin
        if method == "GET" and path == "/api/whoami-v2":
            self._require_token()
            token = {"displayName": "standin", "role": "write"}
            auth = {"type": "access_token", "accessToken": token}
            self._json({"type": "user", "name": hub.user, "fullname": "Hub stand-in", "orgs": [], "auth": auth})
            return True
        if method == "POST" and path == "/api/validate-yaml":
            self._validate_yaml(json.loads(body).get("content", ""))
            return True
        if method == "POST" and path == "/api/repos/create":
            self._require_token()
            self._json(hub.create_repo(json.loads(body or b"{}")))
            return True
        if method == "DELETE" and path == "/api/repos/delete":
            self._require_token()
            hub.delete_repo(json.loads(body or b"{}"))
            self._send(200)
            return True
        if method == "PUT" and path.startswith("/__lfs__/"):
            hub.lfs_put(path.rsplit("/", 1)[1], int(query.get("size", ["-1"])[0]), body)
            self._send(200)
            return True
        if method == "POST" and (match := _LFS_BATCH.fullmatch(path)):
            self._require_token()
            hub._repo(match["type"] or "model", match["repo"], True)
            self._json(hub.lfs_batch(json.loads(body)), 200)
            return True
        if method in ("GET", "HEAD") and (match := _RESOLVE.fullmatch(path)):
            self._resolve(match["type"] or "model", match["repo"], match["revision"], match["path"])
            return True
        match = _API.fullmatch(path)
        if match is None:
            return False
        repo = hub._repo(match["type"], match["repo"], self._authorised())
        action, rest = match["action"], match["rest"] or ""
        if method == "GET" and action in (None, "revision"):
            self._json(hub.repo_info(repo, rest or "main"))
        elif method == "POST" and action == "preupload":
            self._require_token()
            self._json(hub.preupload(repo, rest, json.loads(body)))
        elif method == "POST" and action == "commit":
            self._require_token()
            self._json(hub.commit(repo, rest, body))
        elif method == "GET" and action == "tree":
            revision, _, folder = rest.partition("/")
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            self._json(hub.tree(repo, revision, folder, recursive))
        elif method == "POST" and action == "variables":
            self._require_token()
            self._json(hub.add_variable(repo, json.loads(body)))
        elif method == "POST" and action == "paths-info":
            form = parse_qs(body.decode())
            self._json(hub.paths_info(repo, rest, form.get("paths", [])))
        else:
            return False
        return True

    def _validate_yaml(self, readme: str) -> None:
        """Like the Hub, reject a README whose YAML block does not parse or has the wrong shape (the Hub's
        own checks go further, e.g. it knows every license id; the stand-in checks the structure only)."""
        import yaml

        match = re.match(r"---\s*\n(.*?)\n---\s*(\n|$)", readme, re.DOTALL)
        if match is None:
            self._json({"errors": [], "warnings": [{"message": "Empty or missing yaml metadata in repo card"}]})
            return
        errors = []
        try:
            metadata = yaml.safe_load(match[1])
        except yaml.YAMLError as error:
            metadata, errors = None, [f"invalid YAML: {error}"]
        if not errors and not isinstance(metadata, dict):
            errors.append("the metadata must be a YAML mapping")
        elif not errors:
            for key in ("license", "language", "tags", "task_categories"):
                value = metadata.get(key)
                if value is not None and not (isinstance(value, str) or (
                        isinstance(value, list) and all(isinstance(v, str) for v in value))):  # fmt: skip
                    errors.append(f'"{key}" must be a string or a list of strings')
            if not isinstance(metadata.get("configs", []), list):
                errors.append('"configs" must be a list')
        self._json({"errors": [{"message": e} for e in errors], "warnings": []}, 400 if errors else 200)

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        hub = self.standin
        repo = hub._repo(repo_type, repo_id, self._authorised())
        commit = hub._commit_at(repo, revision)
        stored = commit.files.get(path)
        if stored is None:
            raise HubError(404, f"{path} does not exist on {revision}", "EntryNotFound")
        content = stored.content
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{git_blob_oid(content)}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}",
        }
        if stored.lfs:
            headers |= {"X-Linked-Etag": f'"{stored.oid}"', "X-Linked-Size": str(len(content))}
        status = 200
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if ranged and content:
            start = int(ranged[1]) if ranged[1] else max(len(content) - int(ranged[2]), 0)
            end = min(int(ranged[2]), len(content) - 1) if ranged[1] and ranged[2] else len(content) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            content, status = content[start : end + 1], 206
        self._send(status, content, "application/octet-stream", headers)

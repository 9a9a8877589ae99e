#!/usr/bin/env python3
"""A loopback stand-in for the Hugging Face hub, for scripts/pull-tests.sh (issue 24). Tests never reach the real hub.

    hub_mirror.py ROOT --port-file FILE [--token SECRET]

ROOT/<org>/<repo>/ holds each repository's files (symlinks are followed). It serves what huggingface_hub and
`gemma pull` ask of the hub:
  GET  /api/models/<org>/<repo>/revision/<rev>[?blobs=true]  {"id", "sha", "siblings": [{"rfilename", "size",
       "blobId", "lfs": {"sha256", "size", "pointerSize"}}]} (sizes and lfs only with blobs=true, as the hub)
  GET  /api/models/<org>/<repo>/tree/<rev>[/<path>]           [{"type", "oid", "size", "path", "lfs"}] (recursive)
  HEAD/GET /<org>/<repo>/resolve/<rev>/<path>                 small files: 200 with ETag = git blob id and
       X-Repo-Commit; LFS files (.gguf, .safetensors, or over 10 MB): 302 to /cdn/<sha256> with X-Linked-Etag
       (the sha256), X-Linked-Size and X-Repo-Commit
  GET  /cdn/<sha256>  on 127.0.0.2 (another host, as the hub's CDN is): the bytes, with Range (206 + Content-Range);
       a request carrying the hub's token gets 400
A repository listed in ROOT/<org>/<repo>.gated needs "Authorization: Bearer SECRET": none gives 401, another 403.
The commit of a repository is a sha-1 of its files' names and hashes; any revision name resolves to it, except
that an unknown one ("nope") gives 404, as does an unknown repository or file.

Misbehaviour on purpose, set with POST /_faults (JSON, replacing the previous set) and counted per kind:
  {"drop": {"<file name>": N}}      the next transfer of that file closes the connection after N bytes (once)
  {"corrupt": ["<file name>"]}      that file's bytes are served with one byte flipped (every time)
  {"status": {"<path part>": [429, 500]}}  requests whose path contains the part get these statuses first, one each
GET /_log returns the requests seen (method, path, Range) and clears it.
"""
import argparse
import hashlib
import json
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
FAULTS = {"drop": {}, "corrupt": [], "status": {}}
LOG = []
HASHES = {}  # (path, mtime, size) -> (sha256, git blob id)


def hashes(path):
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in HASHES:
        sha, git = hashlib.sha256(), hashlib.sha1()
        git.update(b"blob %d\0" % st.st_size)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                sha.update(chunk)
                git.update(chunk)
        HASHES[key] = (sha.hexdigest(), git.hexdigest())
    return HASHES[key]


def is_lfs(name, size):
    return name.endswith((".gguf", ".safetensors")) or size > 10 << 20


class Hub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = "."
    token = None
    no_blobs = False
    cdn_host = None  # "127.0.0.2:PORT": the CDN is another host, as the hub's is (clients must not send it the token)

    def log_message(self, *args):
        pass

    def repo_files(self, repo):
        base = os.path.join(self.root, repo)
        out = []
        for d, _, names in os.walk(base, followlinks=True):
            for n in names:
                full = os.path.join(d, n)
                out.append((os.path.relpath(full, base), full))
        return sorted(out)

    def commit(self, repo):
        h = hashlib.sha1()
        for rel, full in self.repo_files(repo):
            h.update(rel.encode() + b"\0" + hashes(full)[0].encode())
        return h.hexdigest()

    def send(self, status, body=b"", headers=None, content_type="application/json"):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", content_type)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def error(self, status, message):
        self.send(status, json.dumps({"error": message}).encode(), {"X-Error-Message": message})

    def fault_status(self):
        with LOCK:
            for part, statuses in FAULTS["status"].items():
                if part in self.path and statuses:
                    return statuses.pop(0)
        return None

    def authorized(self, repo):
        if not os.path.exists(os.path.join(self.root, repo + ".gated")):
            return True
        auth = self.headers.get("Authorization")
        if auth is None:
            self.error(401, "Access to model %s is restricted. You must have access to it and be authenticated." % repo)
            return False
        if auth != "Bearer %s" % self.token:
            self.error(403, "Access to model %s is restricted and you are not in the authorized list." % repo)
            return False
        return True

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/_faults":
            with LOCK:
                new = json.loads(body or b"{}")
                FAULTS.update({"drop": {}, "corrupt": [], "status": {}})
                FAULTS.update(new)
            return self.send(200, b"{}")
        self.error(404, "no such endpoint")

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        with LOCK:
            LOG.append({"method": self.command, "path": path, "range": self.headers.get("Range")})
        if path == "/_log":
            with LOCK:
                out = json.dumps(LOG).encode()
                LOG.clear()
            return self.send(200, out)
        status = self.fault_status()
        if status:
            return self.send(status, json.dumps({"error": "fault %d" % status}).encode(), {"Retry-After": "1"})
        parts = path.strip("/").split("/")
        if path.startswith("/cdn/") and len(parts) == 2:
            if self.headers.get("Authorization"):
                return self.error(400, "the CDN was sent the hub's token")
            return self.cdn(parts[1])
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
            repo = "/".join(parts[2:4])
            if not os.path.isdir(os.path.join(self.root, repo)) or parts[5] == "nope":
                return self.error(404, "Repository not found")
            if not self.authorized(repo):
                return
            return self.info(repo, blobs="blobs=true" in url.query and not self.no_blobs) if parts[4] == "revision" else self.tree(repo)
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, file = "/".join(parts[:2]), "/".join(parts[4:])
            if not os.path.isdir(os.path.join(self.root, repo)) or parts[3] == "nope":
                return self.error(404, "Repository not found")
            if not self.authorized(repo):
                return
            return self.resolve(repo, file)
        self.error(404, "no such endpoint")

    def info(self, repo, blobs):
        siblings = []
        for rel, full in self.repo_files(repo):
            sha, git = hashes(full)
            size = os.path.getsize(full)
            s = {"rfilename": rel}
            if blobs:
                s.update({"size": size, "blobId": git})
                if is_lfs(rel, size):
                    s["lfs"] = {"sha256": sha, "size": size, "pointerSize": 134}
            siblings.append(s)
        body = {"id": repo, "modelId": repo, "sha": self.commit(repo), "private": False,
                "gated": os.path.exists(os.path.join(self.root, repo + ".gated")) and "manual", "siblings": siblings}
        self.send(200, json.dumps(body).encode())

    def tree(self, repo):
        out = []
        for rel, full in self.repo_files(repo):
            sha, git = hashes(full)
            size = os.path.getsize(full)
            e = {"type": "file", "oid": git, "size": size, "path": rel}
            if is_lfs(rel, size):
                e["lfs"] = {"oid": sha, "size": size, "pointerSize": 134}
            out.append(e)
        self.send(200, json.dumps(out).encode())

    def resolve(self, repo, file):
        full = os.path.join(self.root, repo, file)
        if not os.path.isfile(full):
            return self.error(404, "Entry not found")
        sha, git = hashes(full)
        size = os.path.getsize(full)
        commit = self.commit(repo)
        if is_lfs(file, size):
            return self.send(302, b"", {"Location": "http://%s/cdn/%s" % (self.cdn_host, sha), "X-Repo-Commit": commit,
                                        "X-Linked-Etag": '"%s"' % sha, "X-Linked-Size": str(size), "ETag": '"%s"' % git})
        self.serve(full, {"ETag": '"%s"' % git, "X-Repo-Commit": commit}, os.path.basename(file))

    def cdn(self, sha):
        for d, _, names in os.walk(self.root, followlinks=True):
            for n in names:
                full = os.path.join(d, n)
                if hashes(full)[0] == sha:
                    return self.serve(full, {"ETag": '"%s"' % sha}, n)
        self.error(404, "no such object")

    def serve(self, full, headers, name):
        size = os.path.getsize(full)
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start = int(a) if a else 0
            end = int(b) if b else size - 1
            if start >= size:
                return self.send(416, b"", {"Content-Range": "bytes */%d" % size})
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
        headers["Content-Length"] = str(end - start + 1)
        headers["Accept-Ranges"] = "bytes"
        with LOCK:
            drop = FAULTS["drop"].pop(name, None) if self.command == "GET" else None
            corrupt = name in FAULTS["corrupt"]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = 0
        with open(full, "rb") as f:
            f.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                if corrupt and start + sent <= size // 2 < start + sent + len(chunk):
                    i = size // 2 - start - sent
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                if drop is not None and sent + len(chunk) >= drop:
                    self.wfile.write(chunk[:max(0, drop - sent)])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
                left -= len(chunk)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("--port-file", required=True)
    p.add_argument("--token", default="secret-token")
    p.add_argument("--no-blobs", action="store_true", help="ignore blobs=true: list names only, as an older mirror")
    a = p.parse_args()
    Hub.root = os.path.abspath(a.root)
    Hub.token = a.token
    Hub.no_blobs = a.no_blobs
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    cdn = ThreadingHTTPServer(("127.0.0.2", 0), Hub)
    Hub.cdn_host = "127.0.0.2:%d" % cdn.server_address[1]
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(a.port_file + ".tmp", a.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()

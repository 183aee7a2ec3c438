"""A weights server for the tests: a real HTTP server on 127.0.0.1 in a thread.

It serves the files a test puts in ``files`` (by path) and ``hub`` (by ``(repo, file)``, on the
two endpoints of the Hugging Face hub that ``hf_hub_download`` calls: HEAD/GET
``/{repo}/resolve/{revision}/{file}`` with ``X-Repo-Commit``, ``ETag`` = the SHA-256, and
``Content-Length``), answers 404 for anything else, cuts a transfer off mid-body when ``cuts[path]``
says so (``(bytes sent, "once" | "always")``: Content-Length larger than what is sent, then the
connection closes), and records every request in ``requests``.
"""
from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WeightsServer:
    """Files by path, hub files by (repo, file), one-shot or lasting cuts, and the requests seen."""

    def __init__(self) -> None:
        self.files, self.hub, self.cuts, self.requests = {}, {}, {}, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                outer.serve(self, body_wanted=False)

            def do_GET(self):
                outer.serve(self, body_wanted=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def reset(self) -> None:
        self.files.clear(), self.hub.clear(), self.cuts.clear(), self.requests.clear()

    def count(self, path: str) -> int:
        return sum(1 for _, p in self.requests if p == path)

    def serve(self, h: BaseHTTPRequestHandler, body_wanted: bool) -> None:
        path = h.path.split("?", 1)[0]
        self.requests.append((h.command, path))
        hub_file = re.match(r"^/(timm/[^/]+)/resolve/[^/]+/(.+)$", path)
        extra = {}
        if hub_file and hub_file.groups() in self.hub:
            body = self.hub[hub_file.groups()]
            extra = {"X-Repo-Commit": "1" * 40, "ETag": f'"{hashlib.sha256(body).hexdigest()}"'}
        elif path in self.files:
            body = self.files[path]
        else:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        for key, value in extra.items():
            h.send_header(key, value)
        h.end_headers()
        if not body_wanted:
            return
        cut = self.cuts.get(path)
        if cut is not None:
            sent, times = cut
            if times != "always":
                self.cuts.pop(path)
            h.wfile.write(body[:sent])  # then the connection closes: the body is short of Content-Length
            h.close_connection = True
            return
        h.wfile.write(body)

"""tools/serve.py: the real server on 127.0.0.1 (a free port), a real HTTP client (httpx).

Parity with tools/predict.py, bounded concurrent clients all answered (and batched), and bad
requests answered with a 4xx JSON error while the server stays up.
"""
from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ppnets.deploy.inputs import list_inputs

from helpers.deploy import response, shared_trained_export, start_server, tool

CLIENTS, REQUESTS_PER_CLIENT = 8, 3


@pytest.fixture(scope="module")
def served(digits_slice, tmp_path_factory):
    export = shared_trained_export(digits_slice, tmp_path_factory)
    proc, url = start_server(export["model_dir"], ["--max_batch", "8", "--max_wait_ms", "100", "--max_mb", "0.05",
                                                   "--topk", "3", "--threads", "1"])
    try:
        yield {"url": url, "proc": proc, **export}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_predict_answers_as_tools_predict_does(served, digits_slice):
    files = list_inputs(os.path.join(digits_slice, "val", "0"))[:4]
    r = tool("tools/predict.py", "--model_dir", served["model_dir"], "--image", os.path.join(digits_slice, "val", "0"),
             "--topk", "3")
    assert r.returncode == 0, r.stderr
    expected = {}
    for line in r.stdout.splitlines():
        path, rest = line.split(": ", 1)
        expected[path] = [(int(i), n, float(s)) for n, i, s in re.findall(r"(\S+) \((\d+)\): ([\d.]+)", rest)]
    for i, path in enumerate(files):
        data = open(path, "rb").read()
        if i % 2:   # both upload forms
            resp = httpx.post(served["url"] + "/predict", content=data, headers={"Content-Type": "image/png"})
        else:
            resp = httpx.post(served["url"] + "/predict", files={"image": ("x.png", data, "image/png")})
        assert resp.status_code == 200, resp.text
        got = resp.json()["results"]
        assert [(g["class_id"], g["label"]) for g in got] == [(c, n) for c, n, _ in expected[path]]
        assert [g["score"] for g in got] == pytest.approx([s for _, _, s in expected[path]], abs=1e-5)
    resp = httpx.post(served["url"] + "/predict?topk=1", content=open(files[0], "rb").read())
    assert len(resp.json()["results"]) == 1


def test_concurrent_clients_are_all_answered_in_batches(served, digits_slice):
    files = list_inputs(os.path.join(digits_slice, "val"))
    before = httpx.get(served["url"] + "/model").json()["served"]

    def client(k):
        answers = []
        with httpx.Client(base_url=served["url"], timeout=60) as c:
            for j in range(REQUESTS_PER_CLIENT):
                path = files[(k * REQUESTS_PER_CLIENT + j) % len(files)]
                resp = c.post("/predict", files={"image": ("x.png", open(path, "rb").read(), "image/png")})
                answers.append((path, resp.status_code, resp.json()))
        return answers

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = [a for chunk in pool.map(client, range(CLIENTS), timeout=120) for a in chunk]
    assert len(answers) == CLIENTS * REQUESTS_PER_CLIENT
    assert all(code == 200 and len(body["results"]) == 3 for _, code, body in answers)
    # each image gets its own answer, identical whichever batch it ran in
    by_file = {}
    for path, _, body in answers:
        by_file.setdefault(path, []).append(body["results"])
    for results in by_file.values():
        for r in results:
            assert [x["class_id"] for x in r] == [x["class_id"] for x in results[0]]
            assert [x["score"] for x in r] == pytest.approx([x["score"] for x in results[0]], abs=1e-6)
    after = httpx.get(served["url"] + "/model").json()["served"]
    assert after["images"] - before["images"] == CLIENTS * REQUESTS_PER_CLIENT
    assert after["batches"] - before["batches"] < CLIENTS * REQUESTS_PER_CLIENT   # some requests shared a batch
    assert 1 < after["largest_batch"] <= 8


@pytest.mark.parametrize("kind", ["not_an_image", "too_large", "missing_field", "empty", "bad_topk",
                                  "malformed_multipart", "truncated_png"])
def test_bad_requests_get_a_4xx_json_error(served, digits_slice, kind):
    png = open(list_inputs(os.path.join(digits_slice, "val"))[0], "rb").read()
    url = served["url"] + "/predict"
    status, message = {
        "not_an_image": (415, "not a PNG, JPEG, BMP or WebP image (it starts with b'hello, not a'); send one"),
        "too_large": (413, "larger than the limit of 52428 bytes"),
        "missing_field": (400, "multipart field 'image' is missing"),
        "empty": (400, "no image: the request body (or the 'image' field) is empty"),
        "bad_topk": (400, "topk: expected an integer from 1 to 3, got '7'"),
        "malformed_multipart": (400, "malformed multipart body"),
        "truncated_png": (400, "not a usable image"),
    }[kind]
    if kind == "not_an_image":
        resp = httpx.post(url, files={"image": ("a.txt", b"hello, not an image", "text/plain")})
    elif kind == "too_large":
        resp = httpx.post(url, content=b"\0" * 60000)
    elif kind == "missing_field":
        resp = httpx.post(url, files={"picture": ("x.png", png, "image/png")})
    elif kind == "empty":
        resp = httpx.post(url, content=b"")
    elif kind == "bad_topk":
        resp = httpx.post(url + "?topk=7", content=png)
    elif kind == "malformed_multipart":
        resp = httpx.post(url, content=b"garbage", headers={"Content-Type": "multipart/form-data; boundary=zz"})
    else:
        resp = httpx.post(url, content=png[: len(png) // 3])
    assert resp.status_code == status, resp.text
    assert message in resp.json()["error"]
    assert httpx.get(served["url"] + "/health").json()["status"] == "ok"   # still serving


def test_health_model_and_page(served):
    health = httpx.get(served["url"] + "/health").json()
    assert health["status"] == "ok" and health["backend"] == "onnxruntime"
    info = httpx.get(served["url"] + "/model").json()
    assert info["model_name"] == "MobileNetV2_x0_25" and info["class_num"] == 3
    assert info["input_shape"] == [3, 32, 32] and info["label_names"] == ["0", "1", "2"]
    page = httpx.get(served["url"] + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<input type="file"' in page.text and 'fetch("predict"' in page.text
    assert httpx.get(served["url"] + "/nowhere").status_code == 404
    assert "error" in httpx.get(served["url"] + "/nowhere").json()


def test_serve_tool_user_errors(tmp_path):
    r = tool("tools/serve.py", "--model_dir", str(tmp_path))
    assert r.returncode == 2 and "not an exported ppnets model" in r.stderr
    r = tool("tools/serve.py", "--model_dir", str(tmp_path), "--max_batch", "0")
    assert r.returncode == 2 and "--max_batch: expected a positive integer, got 0" in r.stderr


def test_sigterm_ends_the_real_process_in_time_even_while_a_client_trickles(served, digits_slice):
    """Last in this file: it stops the module's server. SIGTERM with a client sending its body a byte at
    a time: the client is answered 503 at once and the process exits 0 well within --graceful_timeout."""
    import socket
    import time

    proc = served["proc"]
    port = int(served["url"].rsplit(":", 1)[1])
    png = open(list_inputs(os.path.join(digits_slice, "val"))[0], "rb").read()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: {len(png)}\r\n\r\n".encode() + png[:10])
    time.sleep(0.3)
    s.sendall(png[10:11])
    start = time.time()
    proc.terminate()
    status, headers, body = response(s)   # read until the server closes
    code = proc.wait(timeout=30)
    took = time.time() - start
    assert status == 503 and headers["retry-after"] == "1", (status, headers)
    assert json.loads(body) == {"error": "the server is shutting down; retry in a moment"}
    assert code == 0 and took < 10, (code, took)   # --graceful_timeout 10 (the default)

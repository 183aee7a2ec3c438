"""The HTTP server under hostile clients (docs/reliability.md, "Server limits").

Most tests share one real uvicorn server with tight limits, run in a thread of this process
(``ThreadServer``: the same ``make_server``, protocol and app as ``tools/serve.py``) and talk to it
over raw sockets — idle, trickling, oversized and disconnecting clients — or httpx. The last
runs the server in the main thread as ``tools/serve.py`` does, puts 200 concurrent clients on it,
measures the peak RSS and sends the process SIGTERM.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import httpx
import numpy as np
import pytest
import yaml

from ppnets.data.transforms.limits import image_pixels
from ppnets.deploy import Predictor
from ppnets.deploy.batcher import Batcher
from ppnets.deploy.limits import LIMIT_FLAGS, ServerLimits
from ppnets.deploy.inputs import list_inputs
from ppnets.deploy.server import create_app
from ppnets.deploy.serving import listen, make_server
from ppnets.cli import run
from ppnets.cli import serve as serve_cli

from helpers.runs import REPO
from helpers.deploy import (ThreadServer, connect, error_of, free_port, png_header_only, post, response, shared_trained_export, trickle)

TIGHT = ServerLimits(max_mb=0.25, max_mpx=0.5, decode_mpx=1.0, buffer_mb=0.4, max_connections=8, header_timeout=1.0,
                     body_timeout=1.5, keep_alive=1.0, max_header_kb=8, graceful_timeout=2.0)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def export(digits_slice, tmp_path_factory):
    return shared_trained_export(digits_slice, tmp_path_factory)


@pytest.fixture(scope="module")
def predictor(export):
    return Predictor(export["model_dir"], backend="onnxruntime", cpu_threads=1)


@pytest.fixture(scope="module")
def guarded(export, predictor):
    """One server with tight limits, shared by the tests that leave it as they found it."""
    server = ThreadServer(export["model_dir"], predictor=predictor, limits=TIGHT, topk=3, max_batch=8,
                          max_wait_ms=20)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def digit(digits_slice):
    return open(list_inputs(os.path.join(digits_slice, "val", "1"))[0], "rb").read()


def counters(server) -> dict:
    return httpx.get(server.url + "/model", timeout=10).json()


# ----------------------------------------------------------------------------- the command line
def test_each_limit_is_a_flag_with_its_default_documented():
    args = serve_cli.parser().parse_args(["--model_dir", "x"])
    reliability = open(os.path.join(REPO, "docs", "reliability.md"), encoding="utf-8").read()
    section = reliability.split("## Server limits", 1)[1].split("\n## ", 1)[0]
    deploy = open(os.path.join(REPO, "docs", "deploy.md"), encoding="utf-8").read()
    for name, default in vars(ServerLimits()).items():
        assert getattr(args, name) == default, name
        assert f"`--{name}` | {default:g} |" in section, name   # the row: flag | default | past it …
        assert f"--{name} {default:g}" in deploy, name          # the command line shown in docs/deploy.md
    assert set(LIMIT_FLAGS) == set(vars(ServerLimits()))


def user_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as e:
        run(serve_cli.main, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith("ppnets: error: "), err
    return err.strip()


def test_command_line_values_are_checked(capsys, export):
    model = ["--model_dir", export["model_dir"]]
    assert user_error(capsys, model + ["--threads", "-3"]) == \
        "ppnets: error: --threads: expected a positive integer (inference threads), got -3"
    assert user_error(capsys, model + ["--max_mb", "nan"]) == "ppnets: error: --max_mb: expected a number from " \
                                                              "0.001 to 1024, got nan"
    assert "--header_timeout: expected a number from 0.1 to 3600, got 0.0" in \
        user_error(capsys, model + ["--header_timeout", "0"])
    assert "--max_connections: expected an integer from 1 to 100000, got 0" in \
        user_error(capsys, model + ["--max_connections", "0"])
    assert "--decode_mpx 1 is below --max_mpx 2" in user_error(capsys, model + ["--decode_mpx", "1", "--max_mpx", "2"])
    with socket.socket() as busy:   # a port in use: one line, exit 2 (uvicorn: its log and exit 3)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert user_error(capsys, model + ["--port", str(port), "--threads", "1"]) == \
            f"ppnets: error: --port {port}: 127.0.0.1:{port} is already in use (another server?); stop it or " \
            "choose another --port"


def test_preprocessing_that_does_not_fit_the_model_is_refused_at_start(capsys, export, tmp_path):
    bad = str(tmp_path / "bad")
    shutil.copytree(export["model_dir"], bad)
    meta_path = os.path.join(bad, "inference.yml")
    meta = yaml.safe_load(open(meta_path))
    resize = next(op for op in meta["transform_ops"] if "ResizeImage" in op)
    resize["ResizeImage"] = {"resize_short": 40}   # wide and tall images now give different sizes, none 32x32
    yaml.safe_dump(meta, open(meta_path, "w"), sort_keys=False)
    err = user_error(capsys, ["--model_dir", bad, "--port", str(free_port()), "--threads", "1"])
    # the Predictor refuses it when it loads the export, before the server starts
    assert err == (f"ppnets: error: {bad}/inference.yml: transform_ops: the preprocessing gives images of different "
                   "sizes ([3, 40, 61], [3, 53, 40]); re-export it with tools/export_model.py")


# ----------------------------------------------------------------------------- slow, idle, oversized
def test_idle_and_slow_clients_are_dropped(guarded, digit):
    """header_timeout 1 s, body_timeout 1.5 s, keep_alive 1 s: nobody holds a connection for long."""
    port = guarded.port

    def idle():
        s = connect(port)
        start = time.time()
        return response(s), time.time() - start

    def idle_after_a_response():
        s = connect(port, post("/predict", digit).replace(b"Connection: close", b"Connection: keep-alive"))
        s.settimeout(10)
        first = s.recv(65536)
        start = time.time()
        while s.recv(65536):
            pass
        s.close()
        return first.split(b"\r\n")[0], time.time() - start

    head = post("/predict", digit)
    cut = head.index(b"\r\n\r\n") + 4
    jobs = {"idle": idle, "keep_alive": idle_after_a_response,
            "headers": lambda: trickle(port, head[:20], head[20:cut], 0.2),
            "body": lambda: trickle(port, head[:cut], digit, 0.2)}
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        got = {name: f.result(timeout=30) for name, f in futures.items()}
    assert got["idle"][0] is None and 0.8 <= got["idle"][1] <= 4, got
    assert got["keep_alive"][0] == b"HTTP/1.1 200 OK" and 0.8 <= got["keep_alive"][1] <= 4, got
    elapsed, answer = got["headers"]
    assert 0.8 <= elapsed <= 4 and answer[0] == 408, got
    assert error_of(answer) == "the request line and headers did not arrive within 1 s (--header_timeout)"
    elapsed, answer = got["body"]
    assert 1.3 <= elapsed <= 5 and answer[0] == 408, got
    assert error_of(answer) == "the request body did not arrive within 1.5 s (--body_timeout)"
    assert answer[1]["connection"] == "close"


def test_oversized_and_unsupported_images(guarded):
    port = guarded.port
    cases = {   # request → (status, error)
        post("/predict", b"", length=300_000):
            (413, "request body of 300000 bytes is larger than the limit of 262144 bytes (--max_mb)"),
        post("/predict", png_header_only(800, 700)):
            (413, "a 800x700 image (0.6 megapixels) is larger than the server's limit of 0.5 megapixels (--max_mpx)"),
        post("/predict", png_header_only(60000, 60000)):
            (413, "an image of 3,600,000,000 pixels (3600.0 megapixels) is larger than the server's limit of 0.5 "
                  "megapixels (--max_mpx)"),
        post("/predict", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 9000 +X 13800\n" + b"\x02\x02" * 64):
            (415, "not a PNG, JPEG, BMP or WebP image (it starts with b'#?RADIANCE\\nF'); send one of those formats"),
        post("/predict", b"II*\x00\x08\x00\x00\x00" + b"\x00" * 64):
            (415, "not a PNG, JPEG, BMP or WebP image (it starts with b'II*\\x00\\x08\\x00\\x00\\x00\\x00\\x00\\x00"
                  "\\x00'); send one of those formats"),
        (b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n"):
            (431, "the request line and headers are larger than 8 KiB (--max_header_kb)"),
        (b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 30000):   # never completed
            (431, "the request line and headers are larger than 8 KiB (--max_header_kb)"),
        b"BLAH /\r\n\r\n": (400, "malformed HTTP request"),
    }
    for request, (status, message) in cases.items():
        answer = response(connect(port, request))
        assert answer is not None and answer[0] == status and error_of(answer) == message, (request[:60], answer)
    chunked = (b"POST /predict HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"8000\r\n" + b"\x89" * 0x8000 + b"\r\n" for _ in range(9)) + b"0\r\n\r\n")
    answer = response(connect(port, chunked))
    assert answer[0] == 413 and error_of(answer) == "request body is larger than the limit of 262144 bytes (--max_mb)"


# ----------------------------------------------------------------------------- shared limits: 503 + Retry-After
def test_the_connection_cap_closes_idle_connections_then_answers_503(guarded, digit):
    """max_connections 8: idle connections make room for a real request; when every connection has a
    request in progress, a new one is answered 503 with Retry-After."""
    before = counters(guarded)["connections"]
    idle = [connect(guarded.port) for _ in range(20)]   # 2.5 x the cap, none sends a byte
    time.sleep(0.3)
    answer = httpx.post(guarded.url + "/predict", content=digit, timeout=10)
    assert answer.status_code == 200 and len(answer.json()["results"]) == 3
    after = counters(guarded)["connections"]
    assert after["closed_idle"] - before["closed_idle"] >= 12 and after["open"] <= 8 + 1, after
    for s in idle:
        s.close()
    time.sleep(0.2)
    head = post("/predict", digit)
    cut = head.index(b"\r\n\r\n") + 4
    with ThreadPoolExecutor(8) as pool:   # 8 requests in progress, each receiving its body slowly
        busy = [pool.submit(trickle, guarded.port, head[:cut], digit, 0.1) for _ in range(8)]
        time.sleep(0.5)
        refused = response(connect(guarded.port, head))
        assert refused[0] == 503 and refused[1]["retry-after"] == "1", refused
        assert error_of(refused) == "the server is at its limit of 8 connections or requests in progress " \
                                    "(--max_connections); retry shortly"
        assert all(f.result(timeout=20)[1][0] == 408 for f in busy)   # then their body_timeout ends them


def test_an_idle_flood_beyond_the_open_files_limit_never_meets_emfile(export, predictor, digit, caplog):
    """300 idle connections on a server of max_connections 32, in a process allowed only the files the
    server says it needs (``connection_files``: 256) besides the clients': the server keeps to its cap
    — asyncio accepts whole passes of connections before any can close an idle one, which the budget
    counts — and a real request is answered at once, without one EMFILE."""
    import resource

    caplog.set_level(logging.INFO, logger="uvicorn.error")
    limits = ServerLimits(max_connections=32, header_timeout=5)
    assert limits.connection_files == 32 + 32 + 3 * 64
    server = ThreadServer(export["model_dir"], predictor=predictor, topk=3, limits=limits)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    idle = []
    try:   # the files open now, 301 client sockets, the server's connections, and 8 for httpx and threads
        allowed = len(os.listdir("/proc/self/fd")) + 301 + limits.connection_files + 8
        resource.setrlimit(resource.RLIMIT_NOFILE, (allowed, hard))
        # the server is busy (for at most 0.5 s) while the flood arrives, so connections queue in the kernel
        flooded = threading.Event()
        server.app.state.batcher.task.get_loop().call_soon_threadsafe(flooded.wait, 0.5)
        for _ in range(300):
            idle.append(connect(server.port))
        flooded.set()
        time.sleep(0.5)
        start = time.time()
        answer = response(connect(server.port, post("/predict", digit)))
        assert answer[0] == 200 and time.time() - start < 5, answer
        assert server.app.state.connections.open <= 32 + 1
    finally:
        for s in idle:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        server.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "accept" in m or "Too many open files" in m], messages


def test_images_being_decoded_are_capped_and_small_ones_do_not_wait(guarded, predictor, digit):
    """decode_mpx 1: two 0.45-megapixel images being decoded fill it; a third is answered 503 at once,
    while a small image is decoded and answered meanwhile."""
    real, release = predictor.transform, threading.Event()

    def slow_for_large(data, rng=None):   # large images take "long" to decode: until released
        if image_pixels(data)[0] > 100_000:
            release.wait(20)
        return real(data)

    predictor.transform = slow_for_large
    try:
        large = [cv2.imencode(".png", np.full((600, 750, 3), 50 * i, np.uint8))[1].tobytes() for i in range(3)]
        with ThreadPoolExecutor(2) as pool:
            held = [pool.submit(httpx.post, guarded.url + "/predict", content=d, timeout=30) for d in large[:2]]
            deadline = time.time() + 10
            while guarded.app.state.decoding.used < 900_000 and time.time() < deadline:
                time.sleep(0.02)
            refused = httpx.post(guarded.url + "/predict", content=large[2], timeout=10)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert refused.json() == {"error": "the server is decoding 1 megapixels at once (--decode_mpx); "
                                               "retry shortly"}
            start = time.time()
            small = httpx.post(guarded.url + "/predict", content=digit, timeout=10)
            assert small.status_code == 200 and time.time() - start < 5
            assert not any(f.done() for f in held)   # the large ones are still being decoded
            release.set()
            assert [f.result(timeout=20).status_code for f in held] == [200, 200]
    finally:
        predictor.transform = real
        release.set()


def test_request_bodies_being_received_are_capped(guarded, digit):
    """buffer_mb 0.4: two bodies of 0.23 MiB in progress (each counted beyond its first 64 KiB) and a third
    arriving exceed it: 503. A small image is still answered meanwhile."""
    part = b"\x89PNG\r\n\x1a\n" + b"\0" * 240_000
    head = post("/predict", b"", length=250_000)
    first = [connect(guarded.port, head + part) for _ in range(2)]
    time.sleep(0.5)
    third = response(connect(guarded.port, head + part))
    assert third[0] == 503 and third[1]["retry-after"] == "1", third
    assert error_of(third) == "the server is receiving 0.4 MiB of request bodies at once (--buffer_mb); retry shortly"
    assert httpx.post(guarded.url + "/predict", content=digit, timeout=10).status_code == 200
    for s in first:
        s.close()


# ----------------------------------------------------------------------------- answers
def test_every_error_is_json_and_parameters_are_strict(guarded, digit):
    url = guarded.url   # (a malformed request: test_oversized_and_unsupported_images)
    cases = [   # (method, path, status, error)
        ("GET", "/nowhere", 404, "Not Found"),
        ("GET", "/predict", 405, "Method Not Allowed"),
        ("POST", "/predict?topk=%C2%B2", 400, "topk: expected an integer from 1 to 3, got '²'"),
        ("POST", "/predict?topk=" + "9" * 5000, 400,
         f"topk: expected an integer from 1 to 3, got '{'9' * 37}...{'9' * 38}'"),   # abbreviated
        ("POST", "/predict?topk=1.5", 400, "topk: expected an integer from 1 to 3, got '1.5'"),
        ("POST", "/predict?topk=0", 400, "topk: expected an integer from 1 to 3, got '0'"),
        ("POST", "/predict?topk=%D9%A1", 400, "topk: expected an integer from 1 to 3, got '١'"),   # an Arabic 1
        ("POST", "/predict?topk=1&topk=2", 400, "topk: given 2 times; give it once"),
        ("POST", "/predict?threshold=0.5", 400, "unknown query parameter 'threshold'; this export takes topk"),
    ]
    with httpx.Client(base_url=url, timeout=10) as client:
        for method, path, status, message in cases:
            answer = client.request(method, path, content=digit if method == "POST" else None)
            assert answer.status_code == status and answer.headers["content-type"] == "application/json", path[:40]
            assert answer.json() == {"error": message}, path[:40]
        assert client.post("/predict?topk=2", content=digit).status_code == 200


def test_a_client_that_disconnects_mid_body_is_one_info_line(guarded, digit, caplog):
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    s = connect(guarded.port, post("/predict", digit[:100], length=len(digit)))
    time.sleep(0.3)
    s.close()
    deadline = time.time() + 10
    while not any("disconnected" in r.getMessage() for r in caplog.records) and time.time() < deadline:
        time.sleep(0.05)
    lines = [r for r in caplog.records if r.name.startswith("uvicorn")]
    assert [(r.levelname, r.getMessage().split(":", 1)[0]) for r in lines] == [("INFO", "client 127.0.0.1")]
    assert lines[0].getMessage().endswith(f"disconnected after 100 of {len(digit)} bytes of its body")
    assert lines[0].exc_info is None


def test_inference_failures_are_500_and_a_stopped_loop_shows_in_health(export, predictor, digit, caplog):
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    server = ThreadServer(export["model_dir"], predictor=predictor, limits=TIGHT, topk=3)
    batcher = server.app.state.batcher
    real = batcher.run
    try:
        def fails_once(batch):
            batcher.run = real
            raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions\nfor input x")

        batcher.run = fails_once
        answer = httpx.post(server.url + "/predict", content=digit, timeout=10)
        assert answer.status_code == 500 and answer.json() == {
            "error": "inference failed: RuntimeError: [ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid "
                     "dimensions for input x"}
        assert httpx.post(server.url + "/predict", content=digit, timeout=10).status_code == 200   # it goes on

        def interrupted(batch):
            raise KeyboardInterrupt
        batcher.run = interrupted   # what no runtime should do: the loop stops, and says so
        answer = httpx.post(server.url + "/predict", content=digit, timeout=10)
        stopped = "the inference loop has stopped (KeyboardInterrupt); restart the server"
        assert answer.status_code == 503 and answer.json() == {"error": stopped}
        health = httpx.get(server.url + "/health", timeout=10)
        assert health.status_code == 503 and health.json()["status"] == "error" and health.json()["error"] == stopped
        again = httpx.post(server.url + "/predict", content=digit, timeout=10)   # at once, not a timeout
        assert again.status_code == 503 and again.json() == {"error": stopped}
    finally:
        server.stop()
    assert not any(r.exc_info for r in caplog.records)


def test_images_of_different_sizes_run_in_batches_of_one_size():
    """A wide and a tall image sent together (preprocessing that does not fix the size): each is
    answered, in batches of one shape; a failing shape fails only its own requests."""
    import asyncio
    shapes = []

    def run(batch):
        shapes.append(batch.shape)
        if batch.shape[2] == 7:
            raise ValueError("this model takes 5 rows")
        return batch.reshape(len(batch), -1)[:, :2] + 1

    async def main():
        batcher = Batcher(run, max_batch=8, max_wait_ms=50)
        await batcher.start()
        wide, tall = np.zeros((3, 5, 9), np.float32), np.ones((3, 9, 5), np.float32)
        odd = np.zeros((3, 7, 7), np.float32)
        results = await asyncio.gather(*(batcher.submit(x) for x in (wide, tall, wide, odd)), return_exceptions=True)
        after = await batcher.submit(tall)
        await batcher.stop()
        return results, after

    results, after = asyncio.run(asyncio.wait_for(main(), 20))
    assert [r.tolist() for r in results[:3]] == [[1, 1], [2, 2], [1, 1]] and after.tolist() == [2, 2]
    assert str(results[3]) == "inference failed: ValueError: this model takes 5 rows"
    assert sorted(shapes[:3]) == [(1, 3, 7, 7), (1, 3, 9, 5), (2, 3, 5, 9)] and shapes[3] == (1, 3, 9, 5)


# ----------------------------------------------------------------------------- shutdown and load
def test_shutdown_refuses_bodies_still_arriving_and_ends_in_time(export, predictor, digit):
    """What SIGTERM starts (uvicorn's should_exit): a client trickling its body is answered 503 at once,
    and the server has stopped well within graceful_timeout (2 s)."""
    server = ThreadServer(export["model_dir"], predictor=predictor, limits=TIGHT, topk=3)
    head = post("/predict", digit)
    cut = head.index(b"\r\n\r\n") + 4
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(trickle, server.port, head[:cut], digit, 0.1)
        time.sleep(0.5)
        took = server.stop()
        elapsed, answer = slow.result(timeout=10)
    assert took < TIGHT.graceful_timeout and not server.thread.is_alive(), took
    assert answer[0] == 503 and answer[1]["retry-after"] == "1", answer
    assert error_of(answer) == "the server is shutting down; retry in a moment"


def _memory_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


#: the load test's limits
LOAD = ServerLimits(max_mb=1, buffer_mb=16, max_mpx=4, decode_mpx=8, header_timeout=2, body_timeout=3,
                    graceful_timeout=5)



@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="measures the peak RSS with /proc")
def test_200_concurrent_clients_then_sigterm(export, predictor, caplog):
    """100 normal clients, each with its own digit image, among 40 oversized, 10 heavy, 25 slow and 25
    disconnecting ones, all at once: every normal client gets its own image's answer, every other one its error or
    its end; the peak RSS stays within the documented bound; SIGTERM ends the server in time.

    The server runs in this process's main thread, as ``tools/serve.py`` runs it (uvicorn catches the
    real SIGTERM sent to the process), and the clients in threads: the peak RSS measured is that
    of both, an upper bound on the server's."""
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    truth, images = [], []
    for c in ("0", "1", "2"):
        files = list_inputs(os.path.join(REPO, "dataset", "digits", "val", c))
        truth += [int(c)] * len(files)
        images += [open(p, "rb").read() for p in files]
    probs = predictor.run(np.stack([np.asarray(predictor.transform(d)) for d in images]))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :3]
    expected = [(o.tolist(), p[o]) for o, p in zip(order, probs)]
    distinct = [i for i in range(len(images)) if all(i == j or np.abs(expected[i][1] - expected[j][1]).max() > 1e-4
                                                     for j in range(len(images)))][:100]
    assert len(distinct) == 100   # answers that could be mistaken for another image's are left out
    assert np.mean([order[i][0] == truth[i] for i in distinct]) > 0.7   # their digits are mostly known

    app = create_app(export["model_dir"], predictor=predictor, limits=LOAD, topk=3)
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = make_server(app, LOAD, log_config=None, force_exit=False)
    report, serving, lock = {}, [True], threading.Lock()

    def clients():
        deadline = time.time() + 60
        while not server.started and time.time() < deadline:
            time.sleep(0.02)
        try:
            report.update(load(port, images, distinct))
        except Exception as e:  # reported by the main thread
            report["error"] = repr(e)
        finally:
            with lock:   # never a SIGTERM once the main thread has put the previous handler back
                if serving[0]:
                    report["signalled"] = time.time()
                    os.kill(os.getpid(), signal.SIGTERM)
            report["trickling"] = [f.result(timeout=20) for f in report.pop("trickling_futures", [])]

    previous = signal.signal(signal.SIGTERM, lambda sig, frame: setattr(server, "should_exit", True))
    driver = threading.Thread(target=clients, daemon=True)
    try:
        driver.start()
        server.run(sockets=[sock])   # until the SIGTERM, with uvicorn's own handler
        stopped = time.time()
    finally:
        with lock:
            serving[0] = False
            signal.signal(signal.SIGTERM, previous)
    driver.join(30)
    assert "error" not in report and "normal" in report, report.get("error")
    for i, answer in report["normal"]:
        assert answer is not None and answer[0] == 200, answer
        got = json.loads(answer[2])["results"]
        assert [r["class_id"] for r in got] == expected[i][0]
        np.testing.assert_allclose([r["score"] for r in got], expected[i][1], atol=1e-5)
    announced = [a for kind, a in report["oversized"] if kind == "header"]
    assert sorted(a[0] for a in announced) == [413] * 30   # refused from their headers
    assert {error_of(a).split(" (")[-1] for a in announced} == {"--max_mb)", "--max_mpx)"}
    sent = [a for kind, a in report["oversized"] if kind == "sent"]   # refused while arriving (or reset)
    assert all(a is None or (a[0] in (413, 503) and error_of(a)) for a in sent), sent
    assert all(a[0] == 200 or (a[0] == 503 and a[1]["retry-after"] == "1") for a in report["heavy"]), report["heavy"]
    assert any(a[0] == 200 for a in report["heavy"])
    assert all(a is not None and a[0] == 408 and e <= 7 for e, a in report["slow"]), report["slow"]
    assert report["took"] < 20, report["took"]
    # the documented bound: 2 x 16 + 0.25 x 256 + max(6 x 8, 15 x 4) megapixels' bytes + 100 = 253 MiB
    assert LOAD.memory_bound_mib == pytest.approx(32 + 64 + 60e6 / 2 ** 20 + 100)
    assert report["peak_kib"] - report["resting_kib"] < LOAD.memory_bound_mib * 1024, report
    exit_s = stopped - report["signalled"]
    assert exit_s < LOAD.graceful_timeout, exit_s
    assert [(a[0], error_of(a)) for _, a in report["trickling"]] == \
        [(503, "the server is shutting down; retry in a moment")] * 2
    records = [r for r in caplog.records if r.name == "uvicorn.error"]
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR], records
    assert sum("disconnected after" in r.getMessage() for r in records) == 25
    print(f"200 clients: {report['took']:.1f} s; RSS at rest {report['resting_kib'] / 1024:.0f} MiB, peak "
          f"+{(report['peak_kib'] - report['resting_kib']) / 1024:.0f} MiB; SIGTERM to stopped: {exit_s:.2f} s; "
          f"heavy {sorted(a[0] for a in report['heavy'])}, sent {[a and a[0] for a in sent]}")


def load(port: int, images: list, distinct: list) -> dict:
    """The 200 clients of the load test, released together; then two clients that trickle a body.

    100 normal; 40 oversized (20 announce 2 MiB, 10 send 1.5 MiB, 10 PNGs of 9 megapixels); 10 heavy but
    valid (3.9-megapixel PNGs); 25 slow (headers or body, a byte every 0.3 s); 25 that disconnect
    mid-body."""
    bomb, announced = png_header_only(3000, 3000), post("/predict", b"", length=2 << 20)
    heavy = cv2.imencode(".png", np.tile(np.arange(256, dtype=np.uint8), (1500, 10))[:, :2600, None].repeat(3, 2))[1]
    start = threading.Barrier(200, timeout=30)

    def normal(i):
        start.wait()
        return i, response(connect(port, post("/predict", images[i]), timeout=30))

    def oversized(k):
        start.wait()
        if k % 4 == 1:   # really sent: the server stops reading it past 1 MiB (or past --buffer_mb)
            s = connect(port, post("/predict", b"", length=3 << 19), timeout=30)
            try:
                for _ in range(24):
                    s.sendall(b"\x89PNG\r\n\x1a\n" + b"\0" * 65528)
            except OSError:
                pass
            return "sent", response(s)
        return "header", response(connect(port, post("/predict", bomb) if k % 4 == 3 else announced, timeout=30))

    def heavy_image(k):
        start.wait()
        return response(connect(port, post("/predict", heavy.tobytes()), timeout=30))

    def slow(k):
        head = post("/predict", images[k])
        cut = head.index(b"\r\n\r\n") + 4
        start.wait()
        return trickle(port, head[:10], head[10:cut], 0.3) if k % 2 else trickle(port, head[:cut], images[k], 0.3)

    def disconnecting(k):
        start.wait()
        s = connect(port, post("/predict", images[k][:50], length=len(images[k])))
        time.sleep(0.3)
        s.close()

    assert response(connect(port, post("/predict", images[0])))[0] == 200
    out = {"resting_kib": _memory_kib("VmRSS")}
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")   # resets VmHWM, the peak RSS, to the current RSS
    t0 = time.time()
    with ThreadPoolExecutor(200) as pool:
        normals = [pool.submit(normal, i) for i in distinct]
        bigs = [pool.submit(oversized, k) for k in range(40)]
        heavies = [pool.submit(heavy_image, k) for k in range(10)]
        slows = [pool.submit(slow, k) for k in range(25)]
        gone = [pool.submit(disconnecting, k) for k in range(25)]
        for f in normals + bigs + heavies + slows + gone:
            f.result(timeout=60)
    out.update(took=time.time() - t0, peak_kib=_memory_kib("VmHWM"), normal=[f.result() for f in normals],
               oversized=[f.result() for f in bigs], heavy=[f.result() for f in heavies],
               slow=[f.result() for f in slows])
    head = post("/predict", images[0])
    cut = head.index(b"\r\n\r\n") + 4
    pool = ThreadPoolExecutor(2)
    out["trickling_futures"] = [pool.submit(trickle, port, head[:cut], images[0], 0.2) for _ in range(2)]
    pool.shutdown(wait=False)
    time.sleep(0.5)
    return out

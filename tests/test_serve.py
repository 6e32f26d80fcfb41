"""vaegen.serve: the explorer's JSON API over HTTP, every malformed and
hostile request we could think of, 32 requests at once, and `vaegen serve`
itself (its URL, Ctrl-C and SIGTERM, a port in use). 127.0.0.1 only."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import vaegen
from tests.support import default_sigint, start_server
from vaegen.cli import cli
from vaegen.latent.map import encode_map
from vaegen.serve.app import Explorer
from vaegen.serve.server import MAX_BODY, load_assets, make_server


@pytest.fixture(scope="module")
def served(tiny_bundle):
    """A running explorer of the tiny bundle; yields (host, port, explorer)."""
    model = vaegen.load_model(tiny_bundle, threads=1)
    explorer = Explorer(model, encode_map(model, limit=200))
    server = start_server(explorer)
    yield server.server_address[0], server.server_address[1], explorer
    server.shutdown()
    server.server_close()


def call(served, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
    """One request; returns (status, parsed JSON or raw bytes)."""
    host, port, _ = served
    conn = http.client.HTTPConnection(host, port, timeout=20)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    if response.getheader("Content-Type", "").startswith("application/json"):
        return response.status, json.loads(payload)
    return response.status, payload


def raw_request(served, text: bytes) -> tuple[int, bytes]:
    """Bytes straight onto the socket (for paths no HTTP client would send as they are)."""
    host, port, _ = served
    with socket.create_connection((host, port), timeout=20) as s:
        s.sendall(text)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def pixels(image: dict) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(image["data"]), np.uint8)
    return data.reshape(image["channels"], image["height"], image["width"])


def test_the_page_and_its_assets(served):
    status, page = call(served, "GET", "/")
    assert status == 200 and b"<canvas id=\"map\"" in page
    for name in ("app.js", "style.css", "index.html"):
        assert call(served, "GET", f"/static/{name}")[0] == 200


def test_info_describes_the_map(served):
    status, info = call(served, "GET", "/api/info")
    assert status == 200
    assert info["latent_dim"] == 4 and info["projection"] == "lda" and info["map_classes"] == ["0", "1", "2", "3"]
    assert len(info["points"]["x"]) == 20 and len(info["colors"]) == 4  # the held-out tenth of the tiny folder
    assert sorted(info["sliders"]) == [0, 1, 2, 3]


def test_decode_a_point_of_the_map_and_a_latent(served):
    _, _, explorer = served
    status, answer = call(served, "POST", "/api/decode", {"xy": [0.5, -0.25]})
    assert status == 200 and pixels(answer["image"]).shape == (1, 28, 28)
    assert np.allclose(answer["xy"], [0.5, -0.25], atol=1e-3)  # the latent lands where it was picked
    z = explorer.map.projection.unproject(np.array([[0.5, -0.25]]))[0]
    assert np.allclose(answer["z"], z, atol=1e-4)
    status, again = call(served, "POST", "/api/decode", {"z": answer["z"]})
    assert status == 200 and np.abs(pixels(again["image"]).astype(int) - pixels(answer["image"])).max() <= 1
    other = call(served, "POST", "/api/decode", {"xy": [-3, 3]})[1]
    assert not np.array_equal(pixels(other["image"]), pixels(answer["image"]))


def drawing(side: int = 112) -> dict:
    from PIL import Image, ImageDraw

    img = Image.new("L", (side, side), 0)
    ImageDraw.Draw(img).line([(side // 2, side // 6), (side // 2, side * 5 // 6)], fill=255, width=side // 12)
    return {"width": side, "height": side, "pixels": (np.asarray(img) / 255).round(3).ravel().tolist()}


def test_encode_a_drawing(served):
    status, answer = call(served, "POST", "/api/encode", drawing())
    assert status == 200
    assert pixels(answer["input"]).shape == (1, 28, 28) and pixels(answer["input"]).max() > 200  # MNIST-style
    assert len(answer["z"]) == 4 and len(answer["xy"]) == 2 and pixels(answer["image"]).max() > 0
    # Its score beside it: Model.score's record of the model input; the tiny bundle has no calibration.
    score = answer["score"]
    assert score["bits_per_dim"] > 0 and score["k"] == 10 and score["calibrated"] is False
    assert score["percentile"] is None and score["flagged"] is None and score["score"] == "complexity+latent"
    status, quick = call(served, "POST", "/api/encode", {**drawing(), "score": False})
    assert status == 200 and "score" not in quick and quick["z"] == answer["z"]


def test_encode_a_file_as_vaegen_reconstruct_reads_it(served, digits):
    from vaegen.api import load_model

    data = base64.b64encode(digits[0].read_bytes()).decode()
    status, answer = call(served, "POST", "/api/encode", {"file": data, "name": digits[0].name, "score": False})
    assert status == 200, answer
    model = load_model(served[2].model.bundle.path, threads=1)
    want = np.round(model.load_images([digits[0]]).images[0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(pixels(answer["input"]), want)  # the same preparation as the CLI's


def test_a_colour_explorer_asks_for_pictures_and_encodes_one_in_colour(colour_bundle, tmp_path):
    from tests.support import write_colour_folder

    model = vaegen.load_model(colour_bundle, threads=1)
    explorer = Explorer(model, encode_map(model, limit=50))
    info = explorer.info()
    assert info["drawing"] is False and info["image_shape"] == [3, 32, 32]
    picture = sorted(write_colour_folder(tmp_path / "p", 1, size=64).rglob("*.png"))[0]
    answer = explorer.encode({"file": base64.b64encode(picture.read_bytes()).decode(), "name": picture.name})
    seen = pixels(answer["input"])
    assert seen.shape == (3, 32, 32) and (seen[0].astype(int) - seen[2]).max() > 100  # a red disc, in colour
    assert np.all(seen[:, 0, 0] == model.bundle.background)  # transparency on the bundle's grey
    assert pixels(answer["image"]).shape == (3, 32, 32) and answer["score"]["bits_per_dim"] > 0


def test_a_calibrated_explorer_gives_the_drawing_a_percentile_and_a_flag(prior_bundle):
    model = vaegen.load_model(prior_bundle, threads=1)
    answer = Explorer(model, encode_map(model, limit=50)).encode(drawing())
    score = answer["score"]
    assert score["calibrated"] is True and 0 <= score["percentile"] <= 100 and isinstance(score["flagged"], bool)
    expected = model.score(pixels(answer["input"])[None] / np.float32(255))[0]
    assert score["bits_per_dim"] == pytest.approx(expected["bits_per_dim"], rel=1e-5)


def test_a_blank_drawing_is_refused_by_an_mnist_model():
    explorer = Explorer.__new__(Explorer)  # the shipped model's preprocessing alone, without a map
    explorer.model = vaegen.load_model(threads=1)
    assert explorer.model.bundle.preprocessing == "mnist"
    with pytest.raises(vaegen.ArgumentError, match="the drawing: the image is blank"):
        explorer._prepare(np.zeros((64, 64), np.float32))
    fitted = explorer._prepare(np.asarray(drawing(64)["pixels"], np.float32).reshape(64, 64))
    assert fitted.shape == (1, 28, 28) and fitted[0, :4].max() == 0  # cropped and centred: empty margins


def test_interpolate(served):
    status, answer = call(served, "POST", "/api/interpolate", {"a": [-1, 0, 0, 0], "b": [1, 1, 0, 0], "steps": 7})
    assert status == 200 and len(answer["frames"]) == 7 and len(answer["xy"]) == 7
    status, answer = call(served, "POST", "/api/interpolate", {"a": [0, 0, 0, 0], "b": [1, 1, 1, 1], "method": "lerp"})
    assert status == 200 and len(answer["frames"]) == 10


def test_sample_from_the_prior_and_no_class_without_a_fitted_prior(served):
    status, answer = call(served, "POST", "/api/sample", {"seed": 3})
    assert status == 200 and len(answer["z"]) == 4
    status, answer = call(served, "POST", "/api/sample", {"class": "1"})
    assert status == 400 and "no classes" in answer["error"]


def test_class_picker_draws_from_the_fitted_prior(tiny_bundle):
    from vaegen.latent import sampling as latent

    model = vaegen.load_model(tiny_bundle, threads=1)
    classes = ["ring", "bar", "zed", "cross"]
    per_class = [latent.GaussianMixture(np.ones(1), np.full((1, 4), 2.0 * k), np.eye(4)[None] * 0.01)
                 for k in range(4)]
    model._prior = latent.FittedPrior(per_class[0], classes, per_class)  # as read_prior would give it
    server = start_server(Explorer(model, encode_map(model, limit=200)))
    where = (*server.server_address[:2], None)
    try:
        assert call(where, "GET", "/api/info")[1]["classes"] == classes
        for label in ("zed", 2):
            status, answer = call(where, "POST", "/api/sample", {"class": label, "seed": 1})
            assert status == 200 and np.allclose(answer["z"], 4.0, atol=0.5)
        for label in ("dog", 7, -1, True, 1.5, [1]):
            status, answer = call(where, "POST", "/api/sample", {"class": label})
            assert status == 400 and "unknown class" in answer["error"]
    finally:
        server.shutdown()
        server.server_close()


BAD_REQUESTS = [
    ("/api/decode", b"{not json", "not valid JSON"),
    ("/api/decode", b'{"xy": [NaN, 0]}', "NaN is not a JSON number"),
    ("/api/decode", b'{"xy": [Infinity, 0]}', "Infinity is not a JSON number"),
    ("/api/decode", b'{"xy": [1e999, 0]}', "finite number"),
    ("/api/decode", b'{"xy": [1e300, 0]}', "finite number"),
    ("/api/decode", b'{"xy": [' + b"9" * 5000 + b', 0]}', "not valid JSON"),
    ("/api/decode", b'{"z": [1, 2, 3]}', "list of 4 numbers"),
    ("/api/decode", b'{"z": [1, 2, 3, 4, 5]}', "list of 4 numbers"),
    ("/api/decode", b'{"z": "0000"}', "list of 4 numbers"),
    ("/api/decode", b'{"z": [1, 2, true, 4]}', "must be a number"),
    ("/api/decode", b'{"xy": [[1], 2]}', "must be a number"),
    ("/api/decode", b"[1, 2]", "JSON object"),
    ("/api/decode", b"{}", "has no 'xy'"),
    ("/api/decode", b"\xff\xfe", "not UTF-8"),
    ("/api/decode", b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    ("/api/encode", b'{"width": 8, "height": 8, "pixels": []}', "width*height"),
    ("/api/encode", b'{"width": 100000, "height": 100000, "pixels": []}', "width must be an integer"),
    ("/api/encode", json.dumps({"width": 8, "height": 8, "pixels": [2] * 64}).encode(), "from 0 to 1"),
    ("/api/encode", json.dumps({"width": 8, "height": 8, "pixels": ["a"] * 64}).encode(), "must all be numbers"),
    ("/api/encode", json.dumps({"width": 8, "height": 8, "pixels": [0] * 64, "score": 1}).encode(), "true or false"),
    ("/api/encode", b'{"file": "not base64!"}', "not valid base64"),
    ("/api/encode", b'{"file": 12}', "bytes in base64"),
    ("/api/encode", b'{"file": ""}', "1 to 1,500,000 bytes"),
    ("/api/encode", json.dumps({"file": base64.b64encode(b"plain text").decode()}).encode(), "not an image"),
    ("/api/encode", json.dumps({"file": "AAAA", "name": ["x"]}).encode(), "must be a file name"),
    ("/api/sample", b'{"seed": -1}', "seed must be an integer"),
    ("/api/sample", b'{"seed": 1.5}', "seed must be an integer"),
    ("/api/interpolate", b'{"a": [0,0,0,0], "b": [0,0,0,0], "steps": 100000}', "steps must be an integer"),
    ("/api/interpolate", b'{"a": [0,0,0,0], "b": [0,0,0,0], "steps": 1}', "steps must be an integer"),
    ("/api/interpolate", b'{"a": [0,0,0,0], "b": [0,0,0]}', "list of 4 numbers"),
    ("/api/interpolate", b'{"a": [0,0,0,0], "b": [0,0,0,0], "method": "cubic"}', "slerp or lerp"),
]


@pytest.mark.parametrize("path, body, message", BAD_REQUESTS, ids=range(len(BAD_REQUESTS)))
def test_malformed_requests_get_a_400_with_a_json_error(served, path, body, message):
    status, answer = call(served, "POST", path, raw=body)
    assert status == 400, answer
    assert message in answer["error"] and "Traceback" not in answer["error"]


def test_what_the_server_refuses_before_reading(served):
    host, port, _ = served
    # Only the headers are sent: the server answers from Content-Length alone,
    # before any of the body (a client still sending it would see the connection close).
    too_long = b"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" \
               b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1)
    status, body = raw_request(served, too_long)
    assert status == 413 and "over" in json.loads(body)["error"]
    status, answer = call(served, "POST", "/api/decode", raw=b'{"xy": [0, 0]}', headers={"Content-Type": "text/plain"})
    assert status == 415
    assert raw_request(served, b"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")[0] == 411
    chunked = b"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert raw_request(served, chunked)[0] == 411
    assert call(served, "POST", "/api/nothing", {"xy": [0, 0]})[0] == 404
    status, answer = call(served, "DELETE", "/api/decode")
    assert status == 501 and "error" in answer
    assert call(served, "GET", "/api/info", headers={"Host": "evil.example:80"})[0] == 403  # DNS rebinding
    assert raw_request(served, b"GET / HTTP/1.1 garbage\r\n\r\n")[0] == 400


TRAVERSALS = [
    "/static/../server.py", "/static/%2e%2e/server.py", "/static/%2E%2E%2Fserver.py", "/static/..%2fserver.py",
    "/static/..\\server.py", "/static/..%5cserver.py", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
    "//etc/passwd", "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/etc/passwd", "/static/", "/static",
    "/static/app.js/../../server.py", "/static/%252e%252e/server.py", "/static/app.js%00.html", "/static/./app.js",
    "/static/APP.JS", "/api/../static/app.js", "C:\\Windows\\win.ini", "/static/app.js;x",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_only_its_own_files_are_served(served, path):
    status, body = raw_request(served, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    assert status in (400, 404), (path, status)
    assert b"import" not in body and b"root:" not in body


def test_symlinks_and_other_files_are_not_assets(tmp_path):
    (tmp_path / "index.html").write_text("<p>hi</p>")
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "link.js").symlink_to(Path(__file__))
    assets = load_assets(tmp_path)
    assert set(assets) == {"/", "/static/index.html"}


def test_32_concurrent_requests_all_succeed(served):
    bodies = [{"xy": [float(i) / 8 - 2, 1.0]} if i % 2 else {"z": [i / 16, 0, -i / 16, 0]} for i in range(32)]
    barrier = threading.Barrier(32)

    def one(body):
        barrier.wait(timeout=20)
        return call(served, "POST", "/api/decode", body)

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, bodies))
    assert [status for status, _ in results] == [200] * 32
    assert call(served, "GET", "/api/info")[0] == 200  # and it still serves


def test_serve_reports_a_port_in_use(tiny_bundle):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--model", str(tiny_bundle), "--port", str(port)])
    assert result.exit_code == 1
    assert result.output == f"Error: Port {port} on 127.0.0.1 is in use; choose another (--port 0 picks a free one).\n"


def test_a_port_in_use_from_python_names_the_argument():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(vaegen.VaegenError) as caught:
            make_server("127.0.0.1", port)
    assert str(caught.value) == f"Port {port} on 127.0.0.1 is in use; choose another (port=0 picks a free one)."


def test_serve_prints_its_url_and_stops_on_ctrl_c(tiny_bundle, tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("VAEGEN_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-m", "vaegen", "serve", "--model", str(tiny_bundle), "--port", "0",
                             "--host", "127.0.0.2", "--quiet", "--threads", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env, preexec_fn=default_sigint)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Serving ") and "http://127.0.0.2:" in line, (line, proc.stderr.read())
        url = line.split(" at ")[1].split()[0]
        host, port = url.split("//")[1].rstrip("/").split(":")
        assert call((host, int(port), None), "GET", "/api/info")[0] == 200
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "Warning: listening on 127.0.0.2" in err and "Traceback" not in err


def test_serve_stops_at_once_on_sigterm_with_one_line(tiny_bundle, tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("VAEGEN_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-m", "vaegen", "serve", "--model", str(tiny_bundle), "--port", "0",
                             "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Serving "), (line, proc.stderr.read())
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert err.splitlines()[-1] == "Stopped." and "Traceback" not in err
    assert took < 1.5, took  # not the poll interval, nor a thread's join

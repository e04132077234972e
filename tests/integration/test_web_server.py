"""`stargan serve` against slow, idle and too many clients, and against bad flags.

The guards live in uvicorn's protocol (stargan.web.server), so they are tested over real
sockets on loopback: a subprocess under a low open-file limit for the whole command, and an
in-process uvicorn with short deadlines for each rule.
"""

import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="the web demo needs stargan[web]")
import uvicorn

from stargan.cli import EXIT_USER_ERROR, main
from stargan.config import ConfigError
from stargan.web.server import AcceptErrorFilter, connection_budget, guarded_protocol
from tiny_models import tiny_model_file

ROOT = Path(__file__).resolve().parents[2]
SLOW_CLIENTS = 300
SERVER_FILE_LIMIT = 256


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str = "/api/info", timeout: float = 5.0) -> tuple[float, bytes]:
    """One GET on a new connection -> (seconds, status line)."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    return time.perf_counter() - start, data.split(b"\r\n", 1)[0]


@contextlib.contextmanager
def file_limit_at_least(n: int):
    """This test process may need more sockets than its soft open-file limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n:
        pytest.skip(f"needs {n} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_slow_clients_cannot_stop_the_server_under_a_low_file_limit(tmp_path):
    """300 clients that send a request head a byte at a time, against a server allowed 256
    open files: a normal request still answers within 1 s, the log stays small and Ctrl-C
    still stops it cleanly (before: no answer while they stayed, and 2-4 MB of accept errors
    a second in the log)."""
    model = tiny_model_file(tmp_path / "m.safetensors")
    port, stderr = free_port(), tmp_path / "stderr"
    limit = (SERVER_FILE_LIMIT, SERVER_FILE_LIMIT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    with open(stderr, "wb") as err, file_limit_at_least(SLOW_CLIENTS + 64):
        proc = subprocess.Popen(
            [sys.executable, "-m", "stargan", "serve", "--model", str(model), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limit),
        )
        clients: list[socket.socket] = []
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    assert get(port)[1] == b"HTTP/1.1 200 OK"
                    break
                except OSError:
                    assert proc.poll() is None, stderr.read_text()
                    assert time.monotonic() < deadline, "stargan serve did not start in 60 s"
                    time.sleep(0.2)
            for _ in range(SLOW_CLIENTS):
                c = socket.create_connection(("127.0.0.1", port), timeout=2)
                c.sendall(b"GET / HTTP/1.1\r\n")
                clients.append(c)
            times = []
            for _ in range(3):
                for c in clients:  # one more byte of a header line each
                    with contextlib.suppress(OSError):
                        c.send(b"X")
                seconds, status = get(port, timeout=5)
                assert status == b"HTTP/1.1 200 OK"
                times.append(seconds)
                time.sleep(0.3)
            assert max(times) < 1.0, times
            print(f"{SLOW_CLIENTS} slow clients: a GET took at most {max(times):.3f} s")
            for c in clients:
                c.close()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10) == 0
        finally:
            for c in clients:
                c.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print(f"stderr of the server: {stderr.stat().st_size} bytes")
    assert stderr.stat().st_size < 100_000, stderr.read_bytes()[-2000:]
    assert "Traceback" not in stderr.read_text()


async def echo_app(scope, receive, send):
    """An ASGI app that reads the whole body and answers with its length."""
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def run_guarded(
    scenario, max_connections=8, head_timeout_s=0.5, transfer_timeout_s=1.5, app=echo_app
):
    """Run ``scenario(port)`` against uvicorn with the guarded protocol in this event loop."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=guarded_protocol(max_connections, head_timeout_s, transfer_timeout_s),
        ws="none",
        lifespan="off",
        log_config=None,  # uvicorn's own config stops its loggers from reaching caplog
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        return await scenario(port)
    finally:
        server.should_exit = True
        await task


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True when the server closes the connection within ``seconds`` (EOF or reset)."""
    try:
        return await asyncio.wait_for(reader.read(), seconds) is not None
    except ConnectionResetError:
        return True
    except asyncio.TimeoutError:
        return False


async def request(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return response


def test_deadlines_close_slow_heads_idle_connections_and_slow_bodies(caplog):
    async def scenario(port):
        idle = await asyncio.open_connection("127.0.0.1", port)
        slow_head = await asyncio.open_connection("127.0.0.1", port)
        slow_body = await asyncio.open_connection("127.0.0.1", port)
        slow_body[1].write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        for _ in range(4):  # a byte every 0.2 s: progress, but not a head in 0.5 s
            slow_head[1].write(b"X")
            slow_body[1].write(b"X")
            await asyncio.sleep(0.2)
        assert await closed_within(idle[0], 0.1)
        assert await closed_within(slow_head[0], 0.1)
        assert not await closed_within(slow_body[0], 0.1)  # a body has 1.5 s
        assert await closed_within(slow_body[0], 1.0)
        fast = await request(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        assert fast.startswith(b"HTTP/1.1 200") and fast.endswith(b"\r\n\r\n3")
        # A kept-alive connection gets the head deadline again after each response.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n0")).startswith(b"HTTP/1.1 200")
        writer.write(b"GET / HTTP/1.1\r\n")
        assert await closed_within(reader, 0.8)

    with caplog.at_level(logging.DEBUG):
        asyncio.run(run_guarded(scenario))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_body_cut_for_slowness_leaves_no_trace_in_the_log(tmp_path, caplog):
    """The demo app sees the cut as a disconnect: no 'internal error' and no traceback."""
    from stargan.inference import load
    from stargan.web import create_app

    app = create_app(load(tiny_model_file(tmp_path / "m.safetensors")), samples={})

    async def scenario(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /api/translate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n"
        )
        assert await closed_within(reader, 2.0)
        await asyncio.sleep(0.1)  # the app's answer to nobody

    with caplog.at_level(logging.DEBUG):
        asyncio.run(run_guarded(scenario, transfer_timeout_s=0.3, app=app))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_at_the_cap_a_new_connection_replaces_the_longest_waiting():
    async def scenario(port):
        waiting = []
        for _ in range(4):
            waiting.append(await asyncio.open_connection("127.0.0.1", port))
            waiting[-1][1].write(b"GET / HTTP/1.1\r\n")
            await asyncio.sleep(0.02)
        response = await request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 200")
        assert await closed_within(waiting[0][0], 0.2)  # the oldest gave its place
        assert not any([await closed_within(r, 0.05) for r, _ in waiting[1:]])

    asyncio.run(run_guarded(scenario, max_connections=4, head_timeout_s=5))


def test_the_connection_budget_stays_under_the_open_file_limit():
    connections, backlog = connection_budget(soft_limit=256, open_fds=10)
    assert connections >= 16 and connections + 3 * backlog + 10 < 256
    assert connection_budget(soft_limit=1 << 20, open_fds=10)[0] == 1024
    with pytest.raises(ConfigError, match=r"open-file limit .* 64 .*ulimit -n"):
        connection_budget(soft_limit=64, open_fds=10)


def test_accept_errors_are_logged_once_per_interval():
    logger = logging.getLogger("test_accept_errors")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    logger.addFilter(AcceptErrorFilter(interval_s=60))
    try:
        error = OSError(24, "Too many open files")
        for _ in range(2048):
            logger.error("socket.accept() out of system resource\nsocket: <...>", exc_info=error)
        logger.error("something else")
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage()[:24] for r in records] == ["socket.accept() failed (", "something else"]
    assert records[0].exc_info is None


@pytest.mark.parametrize(("flags", "flag"), [
    (["--port", "70000"], "--port"),
    (["--port", "-1"], "--port"),
    (["--max-upload-mb", "inf"], "--max-upload-mb"),
    (["--max-upload-mb", "nan"], "--max-upload-mb"),
    (["--max-upload-mb", "-1"], "--max-upload-mb"),
    (["--max-upload-mb", "1e308"], "--max-upload-mb"),
    (["--timeout", "nan"], "--timeout"),
    (["--timeout", "inf"], "--timeout"),
    (["--workers", "0"], "--workers"),
])  # fmt: skip
def test_bad_serve_flags_exit_2_with_one_line_naming_the_flag(
    tmp_path, capsys, monkeypatch, flags, flag
):
    def no_server(*args, **kwargs):
        raise AssertionError(f"a server was started with {flags}")

    monkeypatch.setattr(uvicorn, "run", no_server)
    monkeypatch.setattr(uvicorn.Server, "run", no_server)
    model = tiny_model_file(tmp_path / "m.safetensors")
    assert main(["serve", "--model", str(model), *flags]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("stargan: error: ") and err.count("\n") == 1, err
    assert flag in err


def test_a_port_in_use_exits_2_with_one_line(tmp_path, capsys):
    model = tiny_model_file(tmp_path / "m.safetensors")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model", str(model), "--port", str(port)]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert (
        err == f"stargan: error: cannot listen on 127.0.0.1 port {port}: Address already in use\n"
    )

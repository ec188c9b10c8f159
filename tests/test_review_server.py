"""`comining review --serve` trusts only itself: requests addressed to another name (DNS rebinding)
are refused, no page may frame it, and a browser that hangs up mid-response leaves no traceback."""

from __future__ import annotations

import http.client
import socket
import struct
import time

import pytest
from test_review import hostile_run, post, read_csv, serving

from comining.review.build import build_review


@pytest.fixture
def served(tmp_path):
    run = hostile_run(tmp_path)
    build_review(run)
    server, url = serving(run)
    yield run, server.server_address[1]
    server.shutdown()
    server.server_close()


def request(port: int, method: str, path: str, host: str | None, body: bytes = b"", headers: dict | None = None):
    """(status, headers, body) of one request whose Host header is ``host`` (None: no Host at all)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest(method, path, skip_host=True)
    for name, value in {**({"Host": host} if host is not None else {}), **(headers or {}),
                        "Content-Length": str(len(body))}.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    reply = connection.getresponse()
    answer = reply.status, reply.headers, reply.read()
    connection.close()
    return answer


def test_only_requests_addressed_to_the_server_itself_are_answered(served):
    run, port = served
    for own in (f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}"):
        assert request(port, "GET", "/", own)[0] == 200
    # A rebound name, the right name on another port, a bare address, no Host: all refused.
    for other in (f"attacker.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1", "localhost", "", None):
        status, _, body = request(port, "GET", "/", other)
        assert status == 421 and b"this server answers only http://127.0.0.1:" in body, other
    rows = read_csv(run / "verdicts.csv")
    text = ("path,label\n" + "".join(f'"{r["sample"]}",dog\n' for r in rows)).encode()
    marked = {"X-Comining-Review": "1"}
    assert request(port, "POST", "/save", f"attacker.example:{port}", text, marked)[0] == 421
    assert not (run / "reviewed_labels.csv").exists()
    assert post(f"http://localhost:{port}/", text, marked)[0] == 200  # the page itself still saves


def test_every_response_forbids_framing(served):
    _, port = served
    own = f"127.0.0.1:{port}"
    replies = [request(port, "GET", "/", own), request(port, "GET", "/review/sheet-00000.jpg", own),
               request(port, "GET", "/verdicts.csv", own), request(port, "GET", "/", "attacker.example"),
               request(port, "POST", "/save", own, b"x", {"X-Comining-Review": "1"}),
               request(port, "PUT", "/", own)]  # http.server's own error page
    assert [status for status, _, _ in replies] == [200, 200, 404, 421, 400, 501]
    for _, headers, _ in replies:
        assert headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_a_client_that_hangs_up_mid_response_leaves_no_traceback(served, capsys):
    run, port = served
    sheet = run / "review" / "sheet-00000.png"
    sheet.write_bytes(b"\x89PNG" + b"\0" * 64_000_000)  # more than the sockets buffer: the server is mid-write
    for _ in range(3):
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        client.sendall(f"GET /review/sheet-00000.png HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert client.recv(65536).startswith(b"HTTP/1.0 200")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # hang up with a reset
        client.close()
    time.sleep(1)  # the handler threads meet the closed connections
    assert request(port, "GET", "/", f"127.0.0.1:{port}")[0] == 200  # and the server serves on
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err

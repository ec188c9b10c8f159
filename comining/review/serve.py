"""``comining review --serve``: the review page on 127.0.0.1, which also writes saved label files into the run.

Standard library only. The server answers the page, its thumbnails and one POST (``/save``); the
posted label file is checked (size, header, every training sample once, known classes) before it
is written atomically to RUN_DIR/reviewed_labels.csv. The POST must carry the header
``X-Comining-Review``, which a page from another site cannot send to this address without the
browser asking first, so other sites cannot write into the run.

The server trusts only itself. It answers only requests addressed to it by name (``Host`` is
127.0.0.1:PORT or localhost:PORT): a site whose name an attacker re-points at 127.0.0.1 (DNS
rebinding) counts as the same origin to the browser, but still sends its own name, and gets 421.
Every response forbids being framed (``X-Frame-Options``, CSP ``frame-ancestors``), so no other
page can overlay the review and steer its clicks. A browser that drops a connection mid-response
(a reload, a closed tab) ends that request without a word.
"""

from __future__ import annotations

import json
import re
import signal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from comining.errors import UserError
from comining.review.build import run_classes
from comining.review.decisions import check_label_file, label_file_kind
from comining.rundir import RunDir, atomic_write, read_run

MAX_BYTES_PER_SAMPLE = 4096  # a generous path and class name per row
SHEET = re.compile(r"^/review/sheet-\d{5}\.(png|jpg)$")
TYPES = {".html": "text/html; charset=utf-8", ".png": "image/png", ".jpg": "image/jpeg"}
# Sent with every response besides the page's own policy (a <meta> in review.html, which names its
# script); a <meta> policy cannot say frame-ancestors, so the header must.
SECURITY_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; "
                                               "object-src 'none'"}


def make_handler(run: Path, kind: str, samples: list[str], classes: list[str]):
    """A request handler class serving the review of ``run`` and checking saves against its samples."""
    limit = 1_000_000 + MAX_BYTES_PER_SAMPLE * len(samples)

    class ReviewHandler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002  quiet: the terminal shows our own lines
            pass

        def handle(self):
            try:
                super().handle()
            except ConnectionError:  # the browser went away mid-response: nobody is left to answer
                pass

        def parse_request(self) -> bool:
            """http.server's parsing, then the Host check, before any method runs (GET, POST or other)."""
            if not super().parse_request():
                return False
            port = self.server.server_address[1]
            if (self.headers.get("Host") or "").strip().lower() not in (f"127.0.0.1:{port}", f"localhost:{port}"):
                self.answer(HTTPStatus.MISDIRECTED_REQUEST, error=f"this server answers only http://127.0.0.1:{port}/")
                return False
            return True

        def end_headers(self):
            for name, value in SECURITY_HEADERS.items():  # here, so that http.server's own errors carry them too
                self.send_header(name, value)
            super().end_headers()

        def reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def answer(self, status: int, **fields) -> None:
            self.reply(status, json.dumps(fields).encode(), "application/json")

        def do_GET(self):  # noqa: N802  (the name http.server calls)
            path = self.path.split("?", 1)[0]
            if path in ("/", "/review.html"):
                file = RunDir(run).review_page
            elif SHEET.match(path):
                file = run / path.lstrip("/")
            else:
                return self.answer(HTTPStatus.NOT_FOUND, error="not found")
            try:
                body = file.read_bytes()
            except OSError:
                return self.answer(HTTPStatus.NOT_FOUND, error="not found")
            self.reply(HTTPStatus.OK, body, TYPES[file.suffix])

        def do_POST(self):  # noqa: N802
            if self.path != "/save":
                return self.answer(HTTPStatus.NOT_FOUND, error="not found")
            if not self.headers.get("X-Comining-Review"):
                return self.answer(HTTPStatus.FORBIDDEN, error="only the review page may save")
            try:
                size = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return self.answer(HTTPStatus.LENGTH_REQUIRED, error="the request has no length")
            if size < 0 or size > limit:
                return self.answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, error=f"larger than {limit} bytes")
            try:
                text = self.rfile.read(size).decode("utf-8")
            except UnicodeDecodeError:
                return self.answer(HTTPStatus.BAD_REQUEST, error="the label file is not UTF-8 text")
            problem = check_label_file(text, kind, samples, classes)
            if problem:
                return self.answer(HTTPStatus.BAD_REQUEST, error=f"not a label file of this run: {problem}")
            target = RunDir(run).reviewed_labels
            try:
                atomic_write(target, text.encode("utf-8"))
            except OSError as err:
                return self.answer(HTTPStatus.INTERNAL_SERVER_ERROR, error=f"cannot write {target}: {err.strerror}")
            print(f"saved {target}", flush=True)
            self.answer(HTTPStatus.OK, path=str(target))

    return ReviewHandler


def open_server(run_dir, port: int) -> ThreadingHTTPServer:
    """A server for the review page of ``run_dir`` on 127.0.0.1:``port`` (0 = any free port)."""
    run = Path(run_dir)
    rows, data, _ = read_run(run)
    handler = make_handler(run, label_file_kind(data.get("root")), [r["sample"] for r in rows],
                           run_classes(rows, data))
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as err:
        raise UserError(f"cannot listen on 127.0.0.1:{port} ({err.strerror}): choose another --port") from None


def serve(run_dir, port: int) -> None:
    """Serve the review page until Ctrl-C; prints its address first."""
    server = open_server(run_dir, port)
    host, bound = server.server_address[:2]
    # A process started in the background of a non-interactive shell inherits SIGINT ignored, and then
    # Python never raises KeyboardInterrupt: the server would outlive every Ctrl-C and `kill -INT`.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"serving the review page at http://{host}:{bound}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped serving", flush=True)
    finally:
        server.server_close()

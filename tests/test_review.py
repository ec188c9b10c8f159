"""`comining review`: the page's data, thumbnails and saved label files, in Python and in Chromium."""

from __future__ import annotations

import csv
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from browser import browser, watched  # noqa: F401  (fixtures)
from conftest import cli_runner
from PIL import Image

from comining.review.build import build_review, script_json, suspicion_order
from comining.summary import estimated_text, page_rows
from comining.labelfile import verdict_label
from comining.review.decisions import check_label_file, verdict_right
from comining.review.serve import open_server
from comining.errors import UserError
from comining.review.thumbs import FILE_CELL, SIDE, array_sheets, file_sheets

HOSTILE_FILE = "train/cat/<img src=x onerror=alert(1)>.jpg"
HOSTILE_CLASS = "</script><b>bold</b>"


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def expected_label(row: dict) -> str:
    """The label a row gets when nobody decides, as the coordination contract states it (a sample no
    step saw keeps its given label)."""
    return {"clean": row["given_label"], "relabelled": row["suggested_label"], "discarded": "",
            "unseen": row["given_label"]}[row["verdict"]]


# --- the rules, on hand-built rows ------------------------------------------------------------

def test_default_label_follows_the_verdict():
    assert verdict_label("clean", "cat", None) == "cat"
    assert verdict_label("relabelled", "cat", "dog") == "dog"
    assert verdict_label("discarded", "cat", "") is None
    assert verdict_label("unseen", "cat", "") == "cat"


def test_verdict_right_against_the_truth():
    assert verdict_right("clean", "cat", "", "cat") and not verdict_right("clean", "cat", "", "dog")
    assert verdict_right("relabelled", "cat", "dog", "dog") and not verdict_right("relabelled", "cat", "owl", "dog")
    assert verdict_right("discarded", "cat", "", "dog") and not verdict_right("discarded", "cat", "", "cat")


def test_most_suspect_first_uses_label_quality_then_score():
    rows = [{"verdict": "clean", "score": "9.0", "label_quality": "0.01"},
            {"verdict": "discarded", "score": "1.0", "label_quality": "0.50"},
            {"verdict": "relabelled", "score": "2.0", "label_quality": "0.20"},
            {"verdict": "discarded", "score": "", "label_quality": ""}]
    assert suspicion_order(rows) == [2, 1, 3, 0]  # set aside first, lowest quality first, unknown last
    without = [{k: v for k, v in r.items() if k != "label_quality"} for r in rows]
    assert suspicion_order(without) == [2, 1, 3, 0]  # highest score = least trusted first
    without[1]["score"] = "5.0"
    assert suspicion_order(without) == [1, 2, 3, 0]


def test_the_summary_shows_the_estimate_with_its_interval_where_the_run_has_one():
    assert estimated_text(0.3127, [0.24, 0.41]) == "31.3% (likely 24% to 41%)"
    assert estimated_text(0.3127, None) == "31.3%"  # a run made before intervals
    assert estimated_text(None, None) == "not estimated"
    assert estimated_text(0.3127, [None, "x"]) == "31.3%"  # a damaged interval is left out, not a crash


@pytest.mark.parametrize("readings, shown", [
    ({"rate": 0.43, "disagreement": 0.18, "confident_joint": 0.1},
     "the losses 43%, the network's disagreement 18%, confident learning's count 10%"),
    (None, None), ("damaged", None)])
def test_the_summary_lists_the_readings_behind_the_interval_where_the_run_recorded_them(readings, shown):
    results = {"estimated_noise_rate": 0.18, "estimated_noise_rate_interval": [0.06, 0.49],
               "noise_rate_readings": readings}
    lines = dict(page_rows({}, {}, results, 10, Path("my run")))
    assert lines.get("its readings") == shown
    # 43 points wide: the page says the estimate is unsure, as the summary does, with what to do.
    assert "spans more than 20 points" in lines["unsure"] and "--forget-rate RATE" in lines["unsure"]
    assert "comining export 'my run' --share RATE" in lines["unsure"]
    assert "its readings" not in lines["unsure"]  # they have their own row


def test_the_summary_says_when_the_interval_is_narrow_enough_and_what_a_short_run_did_not_do():
    results = {"estimated_noise_rate": 0.3, "estimated_noise_rate_interval": [0.25, 0.4]}
    assert "unsure" not in dict(page_rows({}, {}, results, 10, Path("r")))
    results["forget_rate_shortfall"] = "no sample is set aside during training: ..."
    assert dict(page_rows({}, {}, results, 10, Path("r")))["warning"].startswith("no sample is set aside")


def test_script_json_cannot_close_the_script_element():
    data = {"names": ["</script><script>alert(1)</script>", "a & b", "<!--"]}
    text = script_json(data)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == data


def test_label_file_check_names_the_problem():
    samples, classes = ["a.jpg", "b,c.jpg"], ["cat", "dog"]
    good = 'path,label\na.jpg,dog\n"b,c.jpg",\n'
    assert check_label_file(good, "path", samples, classes) is None
    assert "header" in check_label_file(good.replace("path", "index", 1), "path", samples, classes)
    assert "missing" in check_label_file("path,label\na.jpg,dog\n", "path", samples, classes)
    assert "repeats" in check_label_file(good + "a.jpg,cat\n", "path", samples, classes)
    assert "not one of" in check_label_file(good.replace("dog", "emu"), "path", samples, classes)
    assert "does not have" in check_label_file(good.replace("a.jpg", "z.jpg"), "path", samples, classes)


def test_array_sheets_put_each_image_in_its_slot(tmp_path):
    images = np.arange(300 * 3 * 2 * 2, dtype=np.int64).reshape(300, 3, 2, 2) % 251
    images = images.astype(np.uint8)
    order = list(range(299, -1, -1))  # slot s holds image 299 - s
    meta = array_sheets(images, order, tmp_path)
    assert (meta["cell_w"], meta["cell_h"], meta["ext"]) == (2, 2, ".png")
    first, second = (np.asarray(Image.open(tmp_path / f"sheet-0000{n}.png")) for n in (0, 1))
    assert first.shape == (SIDE * 2, SIDE * 2, 3) and second.shape == (3 * 2, SIDE * 2, 3)  # 44 left: 3 rows
    slot = 17  # row 1, column 1 of the first sheet
    assert (first[2:4, 2:4].transpose(2, 0, 1) == images[299 - slot]).all()
    slot = 256 + 40  # second sheet, row 2, column 8
    assert (second[4:6, 16:18].transpose(2, 0, 1) == images[299 - slot]).all()


def test_file_sheets_read_in_worker_processes_and_report_unreadable_files(tmp_path):
    names = [f"img{k}.png" for k in range(300)]
    for k, name in enumerate(names):
        if k != 260:  # one file gone since training
            Image.new("RGB", (40, 20), (k % 256, 200 if k >= 256 else 0, 90)).save(tmp_path / name)
    meta = file_sheets(tmp_path, names, tmp_path / "sheets", workers=2)
    assert meta["missing"] == [260] and meta["cell_w"] == FILE_CELL
    second = np.asarray(Image.open(tmp_path / "sheets/sheet-00001.jpg")).astype(int)
    assert second.shape == (3 * FILE_CELL, SIDE * FILE_CELL, 3)  # 44 images: 3 rows of cells
    k = 256 + 20  # second sheet, row 1, column 4; the 40×20 image sits in the cell's middle
    middle = second[FILE_CELL + FILE_CELL // 2, 4 * FILE_CELL + FILE_CELL // 2]
    assert np.abs(middle - [k % 256, 200, 90]).max() <= 12  # JPEG
    assert np.abs(second[FILE_CELL + 2, 4 * FILE_CELL + 2] - 238).max() <= 12  # letterbox background


def test_unknown_verdict_is_a_user_error(tmp_path):
    run = hostile_run(tmp_path)
    text = (run / "verdicts.csv").read_text().replace("discarded", "maybe")
    (run / "verdicts.csv").write_text(text)
    with pytest.raises(UserError, match="'maybe', not one of clean"):
        build_review(run)


def test_serve_prints_its_address_and_stops_cleanly_on_ctrl_c(tmp_path):
    run = hostile_run(tmp_path)
    # faulthandler: should the server ever hang, SIGABRT makes it print every thread's stack, and the
    # failure says where it stopped instead of only that it did
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PYTHONFAULTHANDLER": "1"}
    # Started with SIGINT ignored, as a background job of a non-interactive shell is (how the hang seen
    # in CI came about): Ctrl-C must stop the server all the same.
    proc = subprocess.Popen([sys.executable, "-m", "comining", "review", str(run), "--serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert proc.stdout.readline().strip() == f"review page: {run / 'review.html'}"
        address = proc.stdout.readline().split()[5]
        assert address.startswith("http://127.0.0.1:")
        host, port = address.split("/")[2].split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", "/")
        reply = connection.getresponse()
        assert reply.status == 200 and b"review-data" in reply.read()
        connection.close()
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)  # the stop takes ~1 s; 60 leaves room for a loaded CI
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            out, err = proc.communicate(timeout=20)
            pytest.fail(f"the server did not stop within 60 s of Ctrl-C; stdout {out!r}; its stacks:\n{err}")
    finally:
        proc.kill()
    assert proc.returncode == 0 and "stopped serving" in out and "Traceback" not in err


# --- a hand-built run on an image folder with hostile names -------------------------------------

def hostile_run(base: Path) -> Path:
    """A finished run's files (no training) on root/train/<class>/<file>, one file named as markup."""
    root, run = base / "images", base / "run"
    rows = [(HOSTILE_FILE, "cat", "discarded", ""),
            ("train/cat/plain.jpg", "cat", "relabelled", HOSTILE_CLASS),
            ("train/dog/a,b.jpg", "dog", "clean", "")]
    for n, (sample, *_) in enumerate(rows):
        (root / sample).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (50, 30), (60 * n, 100, 200)).save(root / sample)
    run.mkdir()
    (run / "data.json").write_text(json.dumps({"dataset": "folder", "root": str(root),
                                               "classes": ["cat", "dog", HOSTILE_CLASS]}))
    (run / "config.json").write_text(json.dumps({"dataset": "folder", "method": "comining"}))
    with open(run / "verdicts.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sample", "given_label", "verdict", "suggested_label", "score"])
        writer.writerows([[s, g, v, sug, f"{2.0 - n:.4f}"] for n, (s, g, v, sug) in enumerate(rows)])
    return run


def test_hostile_names_are_shown_as_text_and_run_nothing(tmp_path, watched):
    run = hostile_run(tmp_path)
    page_path = build_review(run)
    page = watched.page
    page.goto(page_path.as_uri())
    card = page.locator(".card", has=page.get_by_text(HOSTILE_FILE, exact=True))
    assert card.count() == 1 and card.locator(".name").text_content() == HOSTILE_FILE
    assert page.get_by_text("suggested: " + HOSTILE_CLASS, exact=True).count() == 1
    assert page.evaluate("document.querySelectorAll('#grid img, b').length") == 0  # no markup from names
    assert page.locator(".thumb.missing").count() == 0  # the hostile file's thumbnail was drawn
    page.wait_for_timeout(300)  # an injected onerror would have fired by now
    watched.assert_quiet()


def test_a_run_named_as_markup_is_the_pages_title_as_text(tmp_path, watched):
    run = hostile_run(tmp_path)
    named = run.rename(tmp_path / "<img src=x onerror=alert(1)>&amp;")  # a folder name cannot hold "/"
    html = build_review(named).read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;amp;" in html[html.index("<title>"):html.index("</title>")]
    watched.page.goto((named / "review.html").as_uri())
    assert named.name in watched.page.title()  # shown as text, as named
    watched.assert_quiet()


def test_runs_with_label_quality_show_the_lowest_quality_first(tmp_path, watched):
    run = hostile_run(tmp_path)
    rows = read_csv(run / "verdicts.csv")
    qualities = {"discarded": "0.40", "relabelled": "0.05", "clean": "0.90"}  # score would put discarded first
    with open(run / "verdicts.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, [*rows[0], "label_quality", "outlier_score"])
        writer.writeheader()
        writer.writerows({**r, "label_quality": qualities[r["verdict"]], "outlier_score": "0.25"} for r in rows)
    page = watched.page
    page.goto(build_review(run).as_uri())
    names = [n.text_content() for n in page.locator(".card .name").all()]
    assert names == ["train/cat/plain.jpg", HOSTILE_FILE]
    assert page.locator(".card").first.get_by_text("quality 0.05 · outlier 0.25").count() == 1
    watched.assert_quiet()


def serving(run: Path):
    server = open_server(run, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def post(url: str, body: bytes, headers: dict, length: int | None = None) -> tuple[int, dict]:
    """POST ``body`` to the server's /save; ``length`` overrides the announced Content-Length."""
    host, port = url.split("/")[2].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/save")
    for name, value in {**headers, "Content-Length": str(len(body) if length is None else length)}.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    reply = connection.getresponse()
    answer = reply.status, json.loads(reply.read())
    connection.close()
    return answer


def test_server_writes_only_checked_label_files(tmp_path):
    run = hostile_run(tmp_path)
    build_review(run)
    server, url = serving(run)
    try:
        rows = read_csv(run / "verdicts.csv")
        text = "path,label\n" + "".join(f'"{r["sample"]}",dog\n' for r in rows)
        marked = {"X-Comining-Review": "1"}
        assert post(url, text.encode(), {})[0] == 403  # no header: not the page
        status, answer = post(url, b"path,label\nnope.jpg,dog\n", marked)
        assert status == 400 and "does not have" in answer["error"]
        assert post(url, b"", marked, length=10**9)[0] == 413
        assert not (run / "reviewed_labels.csv").exists()
        status, answer = post(url, text.encode(), marked)
        assert status == 200 and Path(answer["path"]) == run / "reviewed_labels.csv"
        assert [r["label"] for r in read_csv(run / "reviewed_labels.csv")] == ["dog"] * 3
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        connection.request("GET", "/verdicts.csv")  # only the page and its sheets are served
        assert connection.getresponse().status == 404
        connection.close()
    finally:
        server.shutdown()
        server.server_close()


def test_served_page_saves_into_the_run(tmp_path, watched):
    run = hostile_run(tmp_path)
    build_review(run)
    server, url = serving(run)
    try:
        page = watched.page
        page.goto(url)
        card = page.locator(".card", has=page.get_by_text(HOSTILE_FILE, exact=True))
        card.get_by_role("button", name="keep").click()
        with page.expect_download():
            page.locator("#save").click()
        page.get_by_text("saved ", exact=False).wait_for()
        saved = {r["path"]: r["label"] for r in read_csv(run / "reviewed_labels.csv")}
        assert saved == {HOSTILE_FILE: "cat", "train/cat/plain.jpg": HOSTILE_CLASS,
                         "train/dog/a,b.jpg": "dog"}
        watched.assert_quiet()
    finally:
        server.shutdown()
        server.server_close()


# --- a real digits run in Chromium ------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("review")
    run = cli_runner(base / "cwd")
    out = base / "run"
    result = run("train", "--epochs", "4", "--warmup-epochs", "1", "--train-subset", "400", "--out", out, "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    review = run("review", out)
    assert review.returncode == 0, review.stderr
    assert review.stdout.strip() == f"review page: {out / 'review.html'}"
    return out


def card_of(page, rows: list[dict], sample: str):
    """The card of a sample (cards carry their row of verdicts.csv)."""
    return page.locator(f".card[data-row='{[r['sample'] for r in rows].index(sample)}']")


def shown_count(page) -> int:
    return int(page.locator("#shown-count").text_content().split()[0])


@pytest.mark.slow
def test_digits_page_counts_filters_decisions_and_saved_file(digits_run, watched):
    rows = read_csv(digits_run / "verdicts.csv")
    counts = Counter((r["given_label"], r["verdict"]) for r in rows)
    aside = [r for r in rows if r["verdict"] in ("discarded", "relabelled")]
    assert aside and any(r["verdict"] == "relabelled" for r in aside)  # the run set something aside
    page = watched.page
    page.goto((digits_run / "review.html").as_uri())

    table = [[td.text_content() for td in tr.locator("td").all()] for tr in page.locator("#counts tbody tr").all()]
    for name, images, clean, relabelled, discarded in table[:-1]:
        assert [int(clean), int(relabelled), int(discarded)] == [counts[(name, v)] for v in
                                                                 ("clean", "relabelled", "discarded")]
        assert int(images) == sum(counts[(name, v)] for v in ("clean", "relabelled", "discarded", "unseen"))
    assert table[-1][0] == "all" and int(table[-1][1]) == len(rows)

    # by default: the images set aside, most suspect (lowest label quality) first
    assert shown_count(page) == len(aside) and page.locator(".card").count() == min(200, len(aside))
    qualities = [float(r["label_quality"]) for r in aside]
    first = page.locator(".card").first.locator(".name").text_content()
    assert float(next(r["label_quality"] for r in aside if r["sample"] == first)) == min(qualities)

    # filters: relabelled only, then one given class
    page.locator("#verdict-filter input[value='2']").uncheck()
    relabelled = [r for r in rows if r["verdict"] == "relabelled"]
    assert shown_count(page) == len(relabelled)
    cls = Counter(r["given_label"] for r in relabelled).most_common(1)[0][0]
    page.locator("#class-filter").select_option(label=cls)
    in_class = [r for r in relabelled if r["given_label"] == cls]
    assert shown_count(page) == len(in_class)
    assert {c.text_content() for c in page.locator(".card .name").all()} == {r["sample"] for r in in_class}

    # two decisions: keep the given label (button), another class (menu); a third by keyboard: drop
    cards = page.locator(".card")
    kept = cards.nth(0).locator(".name").text_content()
    cards.nth(0).get_by_role("button", name="keep").click()
    moved_row = next(r for r in relabelled if r["sample"] != kept)
    moved = moved_row["sample"]
    other = next(c for c in ("0", "1", "2") if c not in (moved_row["given_label"], moved_row["suggested_label"]))
    page.locator("#class-filter").select_option(label="all")
    page.locator("#search").fill(moved)
    card = card_of(page, rows, moved)
    card.locator("select").select_option(label=other)
    assert card.locator(".decision").text_content() == "decided: " + other
    page.locator("#search").fill("")
    page.locator("#verdict-filter input[value='0']").check()
    page.locator("#sort").select_option("name")
    clean_row = next(r for r in rows if r["verdict"] == "clean")
    page.locator("#search").fill(clean_row["sample"])
    card_of(page, rows, clean_row["sample"]).focus()
    page.keyboard.press("d")

    page.reload()  # decisions live in the browser
    assert page.locator("#decided-count").text_content() == f"3 of {len(rows)} decided"
    with page.expect_download() as download:
        page.locator("#save").click()
    saved = read_csv(Path(download.value.path()))
    assert list(saved[0]) == ["index", "label"]
    expected = {r["sample"]: expected_label(r) for r in rows}
    expected.update({kept: next(r["given_label"] for r in rows if r["sample"] == kept), moved: other,
                     clean_row["sample"]: ""})
    assert [r["index"] for r in saved] == [r["sample"] for r in rows]
    assert {r["index"]: r["label"] for r in saved} == expected
    watched.assert_quiet()

// The review page: filters, a paged grid of thumbnails, per-image decisions and the label file.
// Every name from the run (files, classes) reaches the page through textContent or .value, never
// as markup, so a web-scraped file name is only ever shown.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("review-data").textContent);
  const COL = DATA.columns;
  const N = COL.sample.length;
  const NAMES = DATA.names;            // class names; the first DATA.classes.length are the run's classes
  const CLASSES = DATA.classes;
  const VERDICTS = DATA.verdicts;      // clean, relabelled, discarded, unseen
  const DROP = -1;                     // a decided label meaning "leave out of training"
  const STORE = "comining-review:" + DATA.run.id;
  const PAGE = DATA.page_size;
  const THUMBS = DATA.thumbs;
  const DISPLAY = 96;                  // thumbnail side on screen, in CSS pixels
  const $ = (id) => document.getElementById(id);

  let decisions = loadDecisions();     // row → label index (DROP = leave out)
  let shown = [];                      // rows passing the filters, in display order
  let page = 0;

  // -- building blocks -------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function option(value, text) {
    const node = el("option", "", text);
    node.value = String(value);
    return node;
  }

  function labelText(label) {
    return label === DROP ? "left out" : NAMES[label];
  }

  function current(row) {
    return decisions.has(row) ? decisions.get(row) : COL.fallback[row];
  }

  // -- decisions, kept in this browser ---------------------------------------------------------

  function loadDecisions() {
    const map = new Map();
    try {
      const saved = JSON.parse(localStorage.getItem(STORE) || "{}");
      for (const [row, label] of Object.entries(saved)) {
        const r = Number(row);
        if (Number.isInteger(r) && r >= 0 && r < N && Number.isInteger(label) && label >= DROP && label < NAMES.length) {
          map.set(r, label);
        }
      }
    } catch (err) { /* unreadable or blocked storage: start with no decisions */ }
    return map;
  }

  function storeDecisions() {
    try {
      localStorage.setItem(STORE, JSON.stringify(Object.fromEntries(decisions)));
    } catch (err) {
      $("save-status").textContent = "this browser does not keep the decisions (storage unavailable): save before closing";
    }
    $("decided-count").textContent = decisions.size + " of " + N + " decided";
  }

  // Give each of ``rows`` the label labelOf(row) returns (undefined = undecide), then redraw their cards.
  function decide(rows, labelOf) {
    for (const row of rows) {
      const label = labelOf(row);
      if (label === undefined) decisions.delete(row); else decisions.set(row, label);
    }
    storeDecisions();
    const changed = new Set(rows);
    for (const card of $("grid").children) {
      if (changed.has(Number(card.dataset.row))) fillDecision(card, Number(card.dataset.row));
    }
  }

  const ACCEPT = (row) => COL.fallback[row];
  const KEEP = (row) => COL.given[row];
  const DROPPED = () => DROP;
  const UNDECIDED = () => undefined;

  // -- summary and counts ----------------------------------------------------------------------

  function drawSummary() {
    $("title").textContent = "Review of " + DATA.run.name;
    const list = $("summary");
    for (const [what, value] of DATA.summary) {
      list.append(el("dt", "", what), el("dd", "", value));
    }
    const body = document.querySelector("#counts tbody");
    const total = [0, 0, 0, 0];
    for (const [name, images, clean, relabelled, discarded] of DATA.counts) {
      const tr = el("tr");
      for (const cell of [name, images, clean, relabelled, discarded]) tr.append(el("td", "", String(cell)));
      [images, clean, relabelled, discarded].forEach((v, i) => { total[i] += v; });
      body.append(tr);
    }
    const tr = el("tr", "total");
    for (const cell of ["all", ...total]) tr.append(el("td", "", String(cell)));
    body.append(tr);
  }

  // -- filters ---------------------------------------------------------------------------------

  function drawFilters() {
    const present = new Set(COL.verdict);
    const box = $("verdict-filter");
    VERDICTS.forEach((name, code) => {
      if (!present.has(code) && name === "unseen") return;
      const input = el("input");
      input.type = "checkbox";
      input.value = String(code);
      input.checked = name === "discarded" || name === "relabelled";
      input.addEventListener("change", refilter);
      const label = el("label");
      label.append(input, " " + name);
      box.append(label);
    });
    const classFilter = $("class-filter");
    classFilter.append(option(-1, "all"));
    CLASSES.forEach((name, i) => classFilter.append(option(i, name)));
    const bulkClass = $("bulk-class");
    CLASSES.forEach((name, i) => bulkClass.append(option(i, name)));
    for (const id of ["class-filter", "sort"]) $(id).addEventListener("change", refilter);
    $("search").addEventListener("input", refilter);
  }

  function sortKey(mode) {
    const score = (row) => COL.score[row];
    if (mode === "name") {   // numbers in names in numeric order: 2.jpg before 10.jpg, index 9 before 10
      const collator = new Intl.Collator(undefined, { numeric: true });
      return (a, b) => collator.compare(COL.sample[a], COL.sample[b]) || a - b;
    }
    if (mode === "suspect") return (a, b) => COL.slot[a] - COL.slot[b];
    const sign = mode === "score-desc" ? -1 : 1;
    return (a, b) => {   // samples without a score go last either way
      const x = score(a), y = score(b);
      if (x === null || y === null) return (x === null) - (y === null) || a - b;
      return sign * (x - y) || a - b;
    };
  }

  function refilter() {
    const verdicts = new Set([...document.querySelectorAll("#verdict-filter input:checked")].map((i) => Number(i.value)));
    const cls = Number($("class-filter").value);
    const text = $("search").value.trim().toLowerCase();
    shown = [];
    for (let row = 0; row < N; row++) {
      if (!verdicts.has(COL.verdict[row])) continue;
      if (cls >= 0 && COL.given[row] !== cls) continue;
      if (text && !COL.sample[row].toLowerCase().includes(text)) continue;
      shown.push(row);
    }
    shown.sort(sortKey($("sort").value));
    page = 0;
    drawPage();
  }

  // -- the grid --------------------------------------------------------------------------------

  function thumbnail(row) {
    const box = el("div", "thumb");
    const slot = COL.slot[row];
    if (!THUMBS || THUMBS.missing.includes(slot)) {
      box.classList.add("missing");
      box.textContent = "no image";
      return box;
    }
    const per = THUMBS.side * THUMBS.side;
    const sheet = Math.floor(slot / per), cell = slot % per;
    const scale = DISPLAY / Math.max(THUMBS.cell_w, THUMBS.cell_h);
    const w = THUMBS.cell_w * scale, h = THUMBS.cell_h * scale;
    box.style.width = w + "px";
    box.style.height = h + "px";
    box.style.backgroundImage = 'url("review/sheet-' + String(sheet).padStart(5, "0") + THUMBS.ext + '")';
    box.style.backgroundSize = THUMBS.side * w + "px auto";
    box.style.backgroundPosition = -(cell % THUMBS.side) * w + "px " + -Math.floor(cell / THUMBS.side) * h + "px";
    if (THUMBS.cell_w < DISPLAY) box.classList.add("pixels");
    return box;
  }

  function fillDecision(card, row) {
    const decided = decisions.has(row);
    card.classList.toggle("decided", decided);
    card.querySelector(".decision").textContent =
      (decided ? "decided: " : "by verdict: ") + labelText(current(row));
    const select = card.querySelector("select");
    if (select.options.length > 1) select.value = current(row) === DROP ? "" : String(current(row));
  }

  function classSelect(row) {
    const select = el("select");
    select.title = "choose another class (c)";
    select.append(option("", "class…"));
    const fill = () => {
      if (select.options.length > 1) return;
      CLASSES.forEach((name, i) => select.append(option(i, name)));
      select.value = current(row) === DROP ? "" : String(current(row));
    };
    if (CLASSES.length <= 30) fill(); else { select.addEventListener("focus", fill); select.addEventListener("pointerdown", fill); }
    select.addEventListener("change", () => { if (select.value !== "") decide([row], () => Number(select.value)); });
    return select;
  }

  function button(text, title, action) {
    const node = el("button", "", text);
    node.type = "button";
    node.title = title;
    node.addEventListener("click", action);
    return node;
  }

  function card(row) {
    const verdict = VERDICTS[COL.verdict[row]];
    const node = el("div", "card v-" + verdict);
    node.tabIndex = 0;
    node.dataset.row = String(row);
    const name = el("div", "name", COL.sample[row]);
    name.title = COL.sample[row];
    node.append(thumbnail(row), name, el("div", "", "given: " + NAMES[COL.given[row]]));
    const suggested = COL.suggested[row];
    node.append(el("div", "", "suggested: " + (suggested >= 0 ? NAMES[suggested] : "—")));
    const line = el("div");
    line.append(el("span", "verdict-" + verdict, verdict));
    const score = COL.score[row];
    line.append(" · score " + (score === null ? "—" : score.toFixed(3)));
    node.append(line);
    const extra = [];   // columns of newer runs: how likely the label is right, how unlike every class
    if (COL.quality && COL.quality[row] !== null) extra.push("quality " + COL.quality[row].toFixed(2));
    if (COL.outlier && COL.outlier[row] !== null) extra.push("outlier " + COL.outlier[row].toFixed(2));
    if (extra.length) node.append(el("div", "", extra.join(" · ")));
    if (COL.truth) {
      const right = COL.right[row] === 1;
      const truth = el("div", right ? "right" : "wrong", "true: " + NAMES[COL.truth[row]] + (right ? " · verdict right" : " · verdict wrong"));
      node.append(truth);
    }
    node.append(el("div", "decision"));
    const actions = el("div", "actions");
    actions.append(
      button("accept", "accept the verdict (a)", () => decide([row], ACCEPT)),
      button("keep", "keep the given label (g)", () => decide([row], KEEP)),
      button("drop", "leave out of training (d)", () => decide([row], DROPPED)),
      classSelect(row));
    node.append(actions);
    fillDecision(node, row);
    return node;
  }

  function drawPage() {
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    const rows = shown.slice(page * PAGE, (page + 1) * PAGE);
    $("grid").replaceChildren(...rows.map(card));
    $("page-info").textContent = "page " + (page + 1) + " of " + pages;
    $("shown-count").textContent = shown.length + " shown; apply to all " + shown.length + ":";
    const empty = $("empty");
    empty.hidden = shown.length > 0;
    empty.textContent = "No image matches the filters" + (N ? "; tick other verdicts or clear the search." : ".");
    for (const id of ["prev-page", "prev-page-2"]) $(id).disabled = page === 0;
    for (const id of ["next-page", "next-page-2"]) $(id).disabled = page >= pages - 1;
  }

  function turn(step) {
    page += step;
    drawPage();
    window.scrollTo(0, $("review").offsetTop);
  }

  // -- the label file --------------------------------------------------------------------------

  function csvField(text) {
    return /[",\r\n]/.test(text) || text !== text.trim() ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  function labelFile() {
    const lines = [DATA.run.kind + ",label"];
    for (let row = 0; row < N; row++) {
      const label = current(row);
      lines.push(csvField(COL.sample[row]) + "," + (label === DROP ? "" : csvField(NAMES[label])));
    }
    return lines.join("\n") + "\n";
  }

  async function save() {
    const text = labelFile();
    const link = el("a");
    link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    link.download = "reviewed_labels.csv";
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    const status = $("save-status");
    status.textContent = "downloaded reviewed_labels.csv (" + N + " samples)";
    if (location.protocol === "http:") {   // served by `comining review --serve`: write it into the run too
      try {
        const reply = await fetch("save", { method: "POST", body: text,
          headers: { "Content-Type": "text/csv", "X-Comining-Review": "1" } });
        const answer = await reply.json();
        status.textContent = reply.ok ? "saved " + answer.path : "not saved in the run: " + answer.error;
      } catch (err) {
        status.textContent = "downloaded, but the server did not answer: is `comining review --serve` still running?";
      }
    }
  }

  // -- keyboard --------------------------------------------------------------------------------

  function focusedRow() {
    const card = document.activeElement && document.activeElement.closest(".card");
    return card ? Number(card.dataset.row) : null;
  }

  function moveFocus(step) {
    const cards = [...$("grid").children];
    if (!cards.length) return;
    const at = cards.indexOf(document.activeElement && document.activeElement.closest(".card"));
    const next = at < 0 ? 0 : Math.min(Math.max(at + step, 0), cards.length - 1);
    cards[next].focus();
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.matches("input, select, textarea")) return;
    const key = event.key;
    const row = focusedRow();
    const act = {
      j: () => moveFocus(1), ArrowRight: () => moveFocus(1), k: () => moveFocus(-1), ArrowLeft: () => moveFocus(-1),
      n: () => turn(1), p: () => turn(-1), s: () => save(),
    }[key];
    if (act) { act(); event.preventDefault(); return; }
    if (row === null) return;
    const choice = { a: ACCEPT, g: KEEP, d: DROPPED, u: UNDECIDED }[key];
    if (choice) decide([row], choice);
    else if (key === "c") document.activeElement.closest(".card").querySelector("select").focus();
    else if (/^[0-9]$/.test(key) && CLASSES.length <= 10 && Number(key) < CLASSES.length) decide([row], () => Number(key));
    else return;
    event.preventDefault();
    if (key !== "c" && key !== "u") moveFocus(1);
  }

  // -- start -----------------------------------------------------------------------------------

  drawSummary();
  drawFilters();
  $("bulk-accept").addEventListener("click", () => decide(shown, ACCEPT));
  $("bulk-keep").addEventListener("click", () => decide(shown, KEEP));
  $("bulk-drop").addEventListener("click", () => decide(shown, DROPPED));
  $("bulk-reset").addEventListener("click", () => decide(shown, UNDECIDED));
  $("bulk-set").addEventListener("click", () => { const label = Number($("bulk-class").value); decide(shown, () => label); });
  $("prev-page").addEventListener("click", () => turn(-1));
  $("prev-page-2").addEventListener("click", () => turn(-1));
  $("next-page").addEventListener("click", () => turn(1));
  $("next-page-2").addEventListener("click", () => turn(1));
  $("save").addEventListener("click", save);
  document.addEventListener("keydown", onKey);
  storeDecisions();
  refilter();
})();

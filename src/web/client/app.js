// The run table page of `damnit web` (browser code, bundled by esbuild at server start). Everything from the
// database goes in with textContent, never innerHTML. The write token comes from the URL fragment (#token=…, as
// `damnit web` prints it), is kept in sessionStorage and removed from the address bar.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./app.css";

const state = { dbs: [], db: null, columns: [], rows: new Map(), view: { hidden: [], order: [], sort: null, desc: false, filters: {}, search: "", tag: "" }, readOnly: false };

function takeToken() {
  const m = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("damnit-token", m[1]);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("damnit-token");
}
const token = takeToken();

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

async function api(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) };
  const res = await fetch(path, init);
  const json = await res.json();
  if (!res.ok) throw new Error(json.message || res.statusText);
  return json;
}

function status(text, isError = false) {
  const s = document.getElementById("status");
  if (s) {
    s.textContent = text;
    s.className = isError ? "error" : "";
  }
}

function viewFromUrl() {
  const p = new URLSearchParams(location.search);
  const v = p.get("view");
  if (v) {
    try {
      Object.assign(state.view, JSON.parse(v));
    } catch {
      /* a broken view link shows the default view */
    }
  }
  return Number(p.get("db") ?? 0);
}

function shareUrl() {
  const p = new URLSearchParams({ db: String(state.db), view: JSON.stringify(state.view) });
  return `${location.origin}${location.pathname}?${p}`;
}

function orderedColumns() {
  const names = state.columns.map((c) => c.name);
  const order = state.view.order.filter((n) => names.includes(n));
  const byName = new Map(state.columns.map((c) => [c.name, c]));
  const rank = (n) => (n === "comment" ? "" : byName.get(n).title);
  const rest = names.filter((n) => !order.includes(n)).sort((a, b) => rank(a).localeCompare(rank(b)));
  return [...order, ...rest].map((n) => byName.get(n));
}

function visibleColumns() {
  return orderedColumns().filter((c) => !state.view.hidden.includes(c.name) && (!state.view.tag || c.tags.includes(state.view.tag) || c.name === "comment"));
}

function cellValue(row, name) {
  const c = row.cells[name];
  return c ? (c.n ?? c.t) : "";
}

function visibleRows() {
  const search = state.view.search.toLowerCase();
  let rows = [...state.rows.values()];
  const cols = visibleColumns();
  rows = rows.filter((r) => {
    for (const [name, f] of Object.entries(state.view.filters)) {
      if (!f) continue;
      const c = r.cells[name];
      const text = c ? c.t : "";
      const m = /^([<>]=?)\s*(-?[\d.eE+-]+)$/.exec(f);
      if (m && c?.n !== undefined) {
        const x = Number(m[2]);
        const ok = m[1] === "<" ? c.n < x : m[1] === "<=" ? c.n <= x : m[1] === ">" ? c.n > x : c.n >= x;
        if (!ok) return false;
      } else if (!text.toLowerCase().includes(f.toLowerCase())) return false;
    }
    if (!search) return true;
    return String(r.run).includes(search) || cols.some((c) => (r.cells[c.name]?.t ?? "").toLowerCase().includes(search));
  });
  const sort = state.view.sort;
  const dir = state.view.desc ? -1 : 1;
  rows.sort((a, b) => {
    if (!sort || sort === "run") return (a.proposal - b.proposal || a.run - b.run) * dir;
    const x = cellValue(a, sort), y = cellValue(b, sort);
    if (typeof x === "number" && typeof y === "number") return (x - y) * dir;
    return String(x).localeCompare(String(y)) * dir;
  });
  return rows;
}

function sparkSvg(points) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", "100");
  svg.setAttribute("height", "24");
  svg.setAttribute("class", "spark");
  const finite = points.filter(Number.isFinite);
  const lo = Math.min(...finite), hi = Math.max(...finite);
  const d = points.map((y, i) => `${i === 0 ? "M" : "L"}${((i / Math.max(1, points.length - 1)) * 98 + 1).toFixed(1)},${(22 - ((y - lo) / (hi - lo || 1)) * 20).toFixed(1)}`).join("");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  svg.append(path);
  return svg;
}

function renderCell(row, col) {
  const c = row.cells[col.name];
  const td = el("td", { "data-col": col.name });
  if (!c) return td;
  if (c.bold) td.style.fontWeight = "bold";
  if (c.bg) td.style.background = `rgb(${c.bg.join(",")})`;
  if (c.err) {
    td.classList.add("error");
    td.title = c.err;
    td.textContent = c.t || "error";
  } else if (c.png) {
    const img = el("img", { class: "thumb", alt: col.title, src: `/api/db/${state.db}/thumb/${row.proposal}/${row.run}/${encodeURIComponent(col.name)}?v=${encodeURIComponent(c.t)}` });
    td.append(img);
  } else if (c.spark) {
    td.append(sparkSvg(c.spark));
  } else {
    td.textContent = c.units && c.t !== "" ? `${c.t} ${c.units}` : c.t;
  }
  if (c.array) {
    td.classList.add("plottable");
    td.addEventListener("click", () => plotArray(row, col));
  }
  return td;
}

function editCell(td, row, col) {
  if (state.readOnly || !token) return;
  td.classList.add("editable");
  td.addEventListener("dblclick", () => {
    const input = el("input", { class: "edit", value: row.cells[col.name]?.t ?? "" });
    td.replaceChildren(input);
    input.focus();
    const commit = async () => {
      try {
        if (col.name === "comment") await api(`/api/db/${state.db}/comment`, { proposal: row.proposal, run: row.run, text: input.value });
        else await api(`/api/db/${state.db}/value`, { proposal: row.proposal, run: row.run, name: col.name, input: input.value });
        status(`saved ${col.title} of run ${row.run}`);
      } catch (err) {
        status(`could not save: ${err.message}`, true);
        render();
      }
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") commit();
      if (e.key === "Escape") render();
    });
  });
}

function header(cols) {
  // Grouped headers from "/" in titles: the group row spans neighbours with the same prefix.
  const groups = el("tr", { class: "groups" }, el("th"), el("th"));
  const names = el("tr", {}, el("th", { text: "Run", class: "sortable", onclick: () => setSort("run") }), el("th", { text: "Timestamp" }));
  let last = null, lastTh = null;
  for (const c of cols) {
    const i = c.title.indexOf("/");
    const group = i > 0 ? c.title.slice(0, i) : "";
    const label = i > 0 ? c.title.slice(i + 1) : c.title;
    if (group === last && lastTh) lastTh.colSpan += 1;
    else {
      lastTh = el("th", { text: group });
      groups.append(lastTh);
      last = group;
    }
    const arrow = state.view.sort === c.name ? (state.view.desc ? " ▼" : " ▲") : "";
    const th = el("th", { text: label + arrow, class: "sortable", "data-col": c.name, title: c.description ?? c.name, onclick: () => setSort(c.name) });
    names.append(th);
  }
  const filters = el("tr", { class: "filters" }, el("th"), el("th"));
  for (const c of cols) {
    const input = el("input", { placeholder: "filter", value: state.view.filters[c.name] ?? "", "data-filter": c.name });
    input.addEventListener("change", () => {
      state.view.filters[c.name] = input.value;
      render();
    });
    filters.append(el("th", {}, input));
  }
  return el("thead", {}, groups, names, filters);
}

function setSort(name) {
  if (state.view.sort === name) state.view.desc = !state.view.desc;
  else Object.assign(state.view, { sort: name, desc: false });
  render();
}

function renderRow(row, cols) {
  const start = row.start === null ? "" : new Date(row.start * 1000).toISOString().slice(0, 19).replace("T", " ");
  const tr = el("tr", { "data-run": row.key }, el("td", { text: String(row.run), class: "run" }), el("td", { text: start }));
  for (const c of cols) {
    const td = renderCell(row, c);
    if (c.editable) editCell(td, row, c);
    tr.append(td);
  }
  return tr;
}

/** Only changed rows: replace their <tr> in place when the order and the visible set cannot have changed. */
function patchRows(rows) {
  const v = state.view;
  const orderFree = (!v.sort || v.sort === "run") && !v.search && !Object.values(v.filters).some(Boolean);
  if (!orderFree) return false;
  const cols = visibleColumns();
  for (const row of rows) {
    const old = document.querySelector(`tbody tr[data-run="${CSS.escape(row.key)}"]`);
    if (!old) return false;
    old.replaceWith(renderRow(row, cols));
  }
  return true;
}

function render() {
  const table = document.getElementById("table");
  if (!table) return;
  const cols = visibleColumns();
  const body = el("tbody");
  for (const row of visibleRows()) body.append(renderRow(row, cols));
  table.replaceChildren(header(cols), body);
  document.getElementById("count").textContent = `${body.children.length} of ${state.rows.size} runs`;
  history.replaceState(null, "", `?db=${state.db}&view=${encodeURIComponent(JSON.stringify(state.view))}`);
}

function exportCsv() {
  const cols = visibleColumns();
  const q = (s) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
  const lines = [["run", ...cols.map((c) => c.title)].map(q).join(",")];
  for (const r of visibleRows()) lines.push([String(r.run), ...cols.map((c) => String(r.cells[c.name]?.n ?? r.cells[c.name]?.t ?? ""))].map(q).join(","));
  const a = el("a", { href: URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" })), download: "runs.csv" });
  a.click();
}

function columnsDialog() {
  const box = el("div", { class: "dialog", id: "columns-dialog" }, el("h3", { text: "Columns" }));
  for (const c of orderedColumns()) {
    const cb = el("input", { type: "checkbox", "data-col": c.name });
    cb.checked = !state.view.hidden.includes(c.name);
    cb.addEventListener("change", () => {
      state.view.hidden = cb.checked ? state.view.hidden.filter((n) => n !== c.name) : [...state.view.hidden, c.name];
      render();
    });
    const move = (d) => () => {
      const order = orderedColumns().map((x) => x.name);
      const i = order.indexOf(c.name), j = i + d;
      if (j < 0 || j >= order.length) return;
      [order[i], order[j]] = [order[j], order[i]];
      state.view.order = order;
      box.remove();
      columnsDialog();
      render();
    };
    box.append(el("div", {}, cb, el("span", { text: ` ${c.title} ` }), el("button", { text: "↑", onclick: move(-1) }), el("button", { text: "↓", onclick: move(1) })));
  }
  box.append(el("button", { text: "Close", onclick: () => box.remove() }));
  document.body.append(box);
}

function plotDialog(title) {
  document.getElementById("plot")?.remove();
  const area = el("div", { id: "plot-area" });
  const box = el("div", { class: "dialog", id: "plot" }, el("h3", { text: title }), area, el("button", { text: "Close", onclick: () => box.remove() }));
  document.body.append(box);
  return area;
}

async function plotArray(row, col) {
  const area = plotDialog(`${col.title}, run ${row.run}`);
  const a = await api(`/api/db/${state.db}/array/${row.proposal}/${row.run}/${encodeURIComponent(col.name)}`);
  if (a.shape.length === 2 && a.summaryType === "trendline") {
    const n = a.shape[1];
    new uPlot({ width: 600, height: 300, scales: { x: { time: false } }, axes: [{}, { size: 70 }], series: [{ label: "x" }, { label: col.title, stroke: "#1f77b4" }] }, [a.data.slice(0, n), a.data.slice(n)], area);
  } else if (a.shape.length === 1) {
    new uPlot({ width: 600, height: 300, scales: { x: { time: false } }, axes: [{}, { size: 70 }], series: [{ label: "index" }, { label: col.title, stroke: "#1f77b4" }] }, [a.data.map((_, i) => i), a.data], area);
  } else if (a.shape.length >= 2) {
    // 2-D (or the first slice of N-D) as an image with its colour limits.
    const [h, w] = a.shape.slice(-2);
    const plane = a.data.slice(0, h * w);
    const lo = Math.min(...plane), hi = Math.max(...plane);
    const canvas = el("canvas", { width: String(w), height: String(h), class: "image" });
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    plane.forEach((v, i) => {
      const t = (v - lo) / (hi - lo || 1);
      img.data.set([Math.round(255 * t), Math.round(80 + 100 * (1 - Math.abs(t - 0.5) * 2)), Math.round(255 * (1 - t)), 255], i * 4);
    });
    ctx.putImageData(img, 0, 0);
    area.append(canvas, el("div", { class: "limits", text: `colour scale ${lo} … ${hi}${a.shape.length > 2 ? " (first slice)" : ""}` }));
  }
}

function plotVsDialog() {
  const cols = state.columns.filter((c) => [...state.rows.values()].some((r) => r.cells[c.name]?.n !== undefined));
  const sel = (id) => el("select", { id }, ...cols.map((c) => el("option", { value: c.name, text: c.title })));
  const x = sel("plot-x"), y = sel("plot-y");
  if (cols[1]) y.value = cols[1].name;
  const area = plotDialog("Plot across runs");
  const draw = () => {
    area.querySelector(".uplot")?.remove();
    const pts = visibleRows().map((r) => [r.cells[x.value]?.n, r.cells[y.value]?.n]).filter(([a, b]) => a !== undefined && b !== undefined).sort((a, b) => a[0] - b[0]);
    new uPlot({ width: 600, height: 300, mode: 1, scales: { x: { time: false } }, axes: [{}, { size: 70 }], series: [{ label: x.value }, { label: y.value, stroke: "#d62728", paths: () => null, points: { show: true, size: 7 } }] }, [pts.map((p) => p[0]), pts.map((p) => p[1])], area);
  };
  area.append(el("div", {}, "x ", x, " y ", y, el("button", { text: "Plot", id: "plot-go", onclick: draw })));
  draw();
}

async function saveViewPrompt() {
  const name = prompt("Name of this view:");
  if (!name) return;
  try {
    await api(`/api/db/${state.db}/views`, { name, view: state.view });
    status(`view "${name}" saved; share it: ${shareUrl()}`);
    loadViews();
  } catch (err) {
    status(`could not save the view: ${err.message}`, true);
  }
}

async function loadViews() {
  const views = await api(`/api/db/${state.db}/views`);
  const s = document.getElementById("views");
  s.replaceChildren(el("option", { value: "", text: "saved views…" }), ...Object.keys(views).map((n) => el("option", { value: n, text: n })));
  s.onchange = () => {
    if (views[s.value]) {
      state.view = { hidden: [], order: [], sort: null, desc: false, filters: {}, search: "", tag: "", ...views[s.value] };
      render();
    }
  };
}

function applyChange(change) {
  if (change.columns) state.columns = change.columns;
  for (const key of change.removed) state.rows.delete(key);
  for (const row of change.rows) state.rows.set(row.key, row);
  if (change.columns || change.removed.length || !patchRows(change.rows)) render();
}

async function start() {
  const app = document.getElementById("app");
  const info = await api("/api/databases");
  state.dbs = info.databases;
  state.readOnly = info.readOnly;
  state.db = viewFromUrl();
  const problems = el("div", { id: "problems" }, ...state.dbs.filter((d) => d.problem).map((d) => el("div", { class: "error", text: `${d.dir}: ${d.problem}` })));
  const pick = el("select", { id: "db" }, ...state.dbs.map((d) => el("option", { value: String(d.id), text: d.name + (d.problem ? " (unavailable)" : "") })));
  pick.value = String(state.db);
  pick.onchange = () => {
    location.search = `?db=${pick.value}`;
  };
  const search = el("input", { id: "search", placeholder: "search", value: state.view.search });
  search.addEventListener("input", () => {
    state.view.search = search.value;
    render();
  });
  const tag = el("select", { id: "tag" }, el("option", { value: "", text: "all tags" }));
  const mode = state.readOnly ? "read-only" : token ? "editing (double-click a comment or editable cell)" : "view only: open the link with #token=… that damnit web printed to edit";
  app.replaceChildren(
    el("header", {}, pick, search, tag, el("button", { text: "Columns", id: "columns-btn", onclick: columnsDialog }), el("button", { text: "Plot", id: "plotvs-btn", onclick: plotVsDialog }), el("button", { text: "CSV", id: "csv-btn", onclick: exportCsv }), el("select", { id: "views" }), el("button", { text: "Save view", id: "save-view", onclick: saveViewPrompt }), el("span", { id: "count" }), el("span", { id: "mode", text: mode })),
    problems,
    el("div", { id: "status" }),
    el("div", { class: "scroll" }, el("table", { id: "table" })),
    el("section", { id: "time-comments" }),
  );
  const db = state.dbs[state.db];
  if (!db || db.problem) {
    status(db ? `${db.dir} cannot be shown: ${db.problem}` : `no database ${state.db}`, true);
    return;
  }
  const t = await api(`/api/db/${state.db}/table`);
  applyChange({ columns: t.columns, rows: t.rows, removed: [] });
  tag.append(...t.tags.map((n) => el("option", { value: n, text: n })));
  tag.value = state.view.tag;
  tag.onchange = () => {
    state.view.tag = tag.value;
    render();
  };
  document.getElementById("time-comments").append(el("h3", { text: "Time comments" }), ...t.timeComments.map((c) => el("div", { text: `${new Date(c.timestamp * 1000).toISOString().slice(0, 19)}  ${c.comment}` })));
  loadViews();
  const events = new EventSource(`/api/db/${state.db}/events`);
  events.addEventListener("change", (e) => applyChange(JSON.parse(e.data)));
  events.onerror = () => status("live updates interrupted; reconnecting…", true);
  events.onopen = () => status("live");
  document.body.dataset.ready = "1";
}

start().catch((err) => status(`failed to load: ${err.message}`, true));

// The run table page of `damnit web` (browser code, bundled by esbuild at server start). Everything from the
// database goes in with textContent, never innerHTML. The write token comes from the URL fragment (#token=…, as
// `damnit web` prints it), is kept in sessionStorage and removed from the address bar.
//
// The table is virtual: only the rows in view (and a few around them) are in the DOM, between two spacer rows
// that keep the scroll height; rows have one fixed height and columns fixed widths, so scrolling re-renders a
// window of rows without re-layout of the others. Thumbnails and sparklines are therefore made only for rows in
// view. Live changes patch the rows' cells in memory and replace only the changed rows that are in view.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./app.css";

const state = { dbs: [], db: null, columns: [], rows: new Map(), list: [], cols: [], widths: [], rowH: 24, window: [0, 0], hwin: [0, 0], processing: new Map(), noData: new Map(), view: { hidden: [], order: [], sort: null, desc: false, filters: {}, search: "", tag: "" }, readOnly: false };

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
  if (!res.ok) throw Object.assign(new Error(json.message || res.statusText), { code: json.code });
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
  if (c.array) td.classList.add("plottable");
  const missing = state.noData.get(`${row.key}/${col.name}`);
  if (missing) {
    td.classList.add("nodata");
    td.title = missing;
  }
  return td;
}

function editCell(td, row, col) {
  if (state.readOnly || !token || !col.editable) return;
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
      renderBody(true);
    }
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") commit();
    if (e.key === "Escape") renderBody(true);
  });
}

/** Clicks and double-clicks on cells, for every row the body will ever hold (one listener each, on the table). */
function cellTarget(e) {
  const td = e.target.closest?.("td[data-col]");
  const tr = td?.parentElement;
  const row = tr && state.rows.get(tr.getAttribute("data-run"));
  const col = row && state.columns.find((c) => c.name === td.getAttribute("data-col"));
  return col ? { td, row, col } : null;
}

/** Cells standing in for the columns left and right of the horizontal window (none when the window has them all). */
function hspacers(tag, cols) {
  const [c0, c1] = state.hwin;
  const left = c0 > 0 ? el(tag, { class: "hspacer", colspan: String(c0) }) : null;
  const right = c1 < cols.length ? el(tag, { class: "hspacer", colspan: String(cols.length - c1) }) : null;
  return [left, right];
}

function header(cols) {
  // Grouped headers from "/" in titles: the group row spans neighbours with the same prefix.
  const [c0, c1] = state.hwin;
  const [gl, gr] = hspacers("th", cols), [nl, nr] = hspacers("th", cols), [fl, fr] = hspacers("th", cols);
  const groups = el("tr", { class: "groups" }, el("th"), el("th"), el("th"), gl);
  const names = el("tr", {}, el("th", { text: "Run", class: "sortable", onclick: () => setSort("run") }), el("th", { text: "Status", title: "processing state: pending or running, with the Slurm job or local" }), el("th", { text: "Timestamp" }), nl);
  const filters = el("tr", { class: "filters" }, el("th"), el("th"), el("th"), fl);
  let last = null, lastTh = null;
  for (const c of cols.slice(c0, c1)) {
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
    names.append(el("th", { text: label + arrow, class: "sortable", "data-col": c.name, title: c.description ?? c.name, onclick: () => setSort(c.name) }));
    const input = el("input", { placeholder: "filter", value: state.view.filters[c.name] ?? "", "data-filter": c.name });
    input.addEventListener("change", () => {
      state.view.filters[c.name] = input.value;
      render();
    });
    filters.append(el("th", {}, input));
  }
  if (gr) groups.append(gr);
  if (nr) names.append(nr);
  if (fr) filters.append(fr);
  return el("thead", {}, groups, names, filters);
}

function colgroup() {
  return el("colgroup", {}, ...FIXED_WIDTHS.map((w) => el("col", { style: `width:${w}px` })), ...state.widths.map((w) => el("col", { style: `width:${w}px` })));
}

function setSort(name) {
  if (state.view.sort === name) state.view.desc = !state.view.desc;
  else Object.assign(state.view, { sort: name, desc: false });
  render();
}

const FIXED_WIDTHS = [60, 200, 150];
const OVERSCAN = 8;
/** Tables with more columns than this are virtual across too: only the columns in view (and 400 px around). */
const WIDE_COLUMNS = 40;
const OVERSCAN_PX = 400;

/** The range [c0, c1) of variable columns in (or near) the view. */
function columnWindow(scroller) {
  const n = state.cols.length;
  if (n <= WIDE_COLUMNS) return [0, n];
  const fixed = FIXED_WIDTHS.reduce((a, b) => a + b, 0);
  const from = scroller.scrollLeft - fixed - OVERSCAN_PX, to = scroller.scrollLeft + scroller.clientWidth - fixed + OVERSCAN_PX;
  let x = 0, c0 = 0, c1 = n;
  for (let i = 0; i < n; i++) {
    const w = state.widths[i];
    if (x + w <= from) c0 = i + 1;
    if (x >= to) {
      c1 = i;
      break;
    }
    x += w;
  }
  return [Math.min(c0, c1), c1];
}

function processingText(key) {
  const states = state.processing.get(key);
  if (!states?.length) return null;
  return states
    .map((p) => {
      const where = p.slurm_job_id ? `Slurm job ${p.slurm_job_id}${p.slurm_cluster ? ` on ${p.slurm_cluster}` : ""}` : "local";
      return `${p.status.toLowerCase()} (${where}${p.hostname ? `, ${p.hostname}` : ""})`;
    })
    .join("; ");
}

function renderRow(row, cols) {
  const start = row.start === null ? "" : new Date(row.start * 1000).toISOString().slice(0, 19).replace("T", " ");
  const proc = processingText(row.key);
  const [left, right] = hspacers("td", cols);
  const tr = el("tr", { "data-run": row.key }, el("td", { text: String(row.run), class: "run" }), el("td", { text: proc ?? "", class: proc ? "processing" : "", "data-status": "", title: proc ?? "" }), el("td", { text: start }), left);
  for (const c of cols.slice(state.hwin[0], state.hwin[1])) {
    const td = renderCell(row, c);
    if (c.editable && token && !state.readOnly) td.classList.add("editable");
    tr.append(td);
  }
  if (right) tr.append(right);
  return tr;
}

/** A fixed width per column from the longest text in it (a thumbnail's or sparkline's width for those). */
function columnWidths(cols) {
  return cols.map((c) => {
    const i = c.title.indexOf("/");
    let chars = (i > 0 ? c.title.slice(i + 1) : c.title).length + 2;
    let px = 0;
    for (const r of state.list) {
      const cell = r.cells[c.name];
      if (!cell) continue;
      if (cell.png) px = Math.max(px, Math.round((cell.png.w / Math.max(1, cell.png.h)) * 48) + 12);
      else if (cell.spark) px = Math.max(px, 112);
      else chars = Math.max(chars, cell.t.length + (cell.units ? cell.units.length + 1 : 0));
    }
    return Math.min(320, Math.max(48, px, chars * 8 + 16));
  });
}

function spacer(height) {
  const tr = el("tr", { class: "spacer" }, el("td", { colspan: String(FIXED_WIDTHS.length + state.cols.length) }));
  tr.style.height = `${height}px`;
  return tr;
}

/** The rows in view (and OVERSCAN around them), between spacers; `force` re-renders an unchanged window. */
function renderBody(force = false) {
  const body = document.querySelector("#table tbody");
  const scroller = document.querySelector(".scroll");
  if (!body || !scroller) return;
  const first = Math.max(0, Math.floor(scroller.scrollTop / state.rowH) - OVERSCAN);
  const last = Math.min(state.list.length, first + Math.ceil(scroller.clientHeight / state.rowH) + 2 * OVERSCAN);
  const [c0, c1] = columnWindow(scroller);
  const across = c0 !== state.hwin[0] || c1 !== state.hwin[1];
  if (!force && !across && first === state.window[0] && last === state.window[1]) return;
  state.window = [first, last];
  if (across) {
    state.hwin = [c0, c1];
    document.querySelector("#table thead")?.replaceWith(header(state.cols));
  }
  const frag = document.createDocumentFragment();
  frag.append(spacer(first * state.rowH));
  for (let i = first; i < last; i++) frag.append(renderRow(state.list[i], state.cols));
  frag.append(spacer((state.list.length - last) * state.rowH));
  body.replaceChildren(frag);
}

/** Only changed rows: replace those in view, when the order and the visible set cannot have changed. */
function patchRows(keys) {
  const v = state.view;
  const orderFree = (!v.sort || v.sort === "run") && !v.search && !Object.values(v.filters).some(Boolean);
  if (!orderFree) return false;
  for (const key of keys) {
    const old = document.querySelector(`tbody tr[data-run="${CSS.escape(key)}"]`);
    if (old) old.replaceWith(renderRow(state.rows.get(key), state.cols));
  }
  return true;
}

function render() {
  const table = document.getElementById("table");
  if (!table) return;
  state.cols = visibleColumns();
  state.list = visibleRows();
  state.widths = columnWidths(state.cols);
  state.rowH = state.cols.some((c) => state.list.some((r) => r.cells[c.name]?.png)) ? 54 : 24;
  table.style.setProperty("--row-h", `${state.rowH}px`);
  table.style.width = `${[...FIXED_WIDTHS, ...state.widths].reduce((a, b) => a + b, 0)}px`;
  state.hwin = columnWindow(document.querySelector(".scroll"));
  table.replaceChildren(colgroup(), header(state.cols), el("tbody"));
  renderBody(true);
  // The spacers assume every row has rowH: take the height the browser gave the first row.
  const first = table.querySelector("tbody tr[data-run]");
  const measured = first?.getBoundingClientRect().height;
  if (measured && Math.abs(measured - state.rowH) > 0.01) {
    state.rowH = measured;
    renderBody(true);
  }
  document.getElementById("count").textContent = `${state.list.length} of ${state.rows.size} runs`;
  document.body.dataset.rows = String(state.list.length);
  history.replaceState(null, "", `?db=${state.db}&view=${encodeURIComponent(JSON.stringify(state.view))}`);
}

/** Scroll so that run `key` is in view (and rendered); false if the view does not show it. */
function scrollToRun(key) {
  const i = state.list.findIndex((r) => r.key === key);
  if (i < 0) return false;
  const scroller = document.querySelector(".scroll");
  scroller.scrollTop = Math.max(0, i * state.rowH - scroller.clientHeight / 2);
  renderBody();
  return true;
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

/** The viridis-like colour of t in [0, 1] (a few stops, interpolated). */
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function colour(t) {
  const x = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x)), f = x - i;
  return STOPS[i].map((a, k) => Math.round(a + (STOPS[i + 1][k] - a) * f));
}

function lineChart(area, xs, ys, xLabel, yLabel) {
  const plain = (_u, ticks) => ticks.map((v) => String(v));
  new uPlot({ width: 600, height: 300, scales: { x: { time: false } }, axes: [{ label: xLabel, space: 110, values: plain }, { size: 70, label: yLabel }], series: [{ label: xLabel }, { label: yLabel, stroke: "#1f77b4" }] }, [xs, ys], area);
}

function imageChart(area, a) {
  const [h, w] = a.shape.slice(-2);
  const [lo, hi] = a.limits ?? [0, 0];
  const canvas = el("canvas", { width: String(w), height: String(h), class: "image" });
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < a.data.length; i++) {
    const v = a.data[i];
    const rgb = v === null ? [255, 255, 255] : colour((v - lo) / (hi - lo || 1));
    img.data.set([...rgb, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  const bar = el("canvas", { width: "256", height: "1", class: "colourbar" });
  const bctx = bar.getContext("2d");
  const bimg = bctx.createImageData(256, 1);
  for (let i = 0; i < 256; i++) bimg.data.set([...colour(i / 255), 255], i * 4);
  bctx.putImageData(bimg, 0, 0);
  const [dy, dx] = a.dims.slice(-2);
  const range = (d) => (a.coords[d]?.length ? ` ${a.coords[d][0]} … ${a.coords[d][a.coords[d].length - 1]}` : "");
  area.append(
    canvas,
    el("div", { class: "axes", text: `x: ${dx}${range(dx)}, y: ${dy}${range(dy)}` }),
    el("div", { class: "scale" }, el("span", { text: String(lo) }), bar, el("span", { text: String(hi) })),
    el("div", { class: "limits", text: `colour scale ${lo} … ${hi}` }),
  );
}

/** Plot the run's full data of a variable (extracted_data/…h5); `index` picks the slice of an N-D array. */
async function plotData(row, col, td, index = []) {
  const area = plotDialog(`${col.title}, run ${row.run}`);
  area.dataset.loading = "1";
  const base = `/api/db/${state.db}`;
  const path = `${row.proposal}/${row.run}/${encodeURIComponent(col.name)}`;
  let a;
  try {
    a = await api(`${base}/data/${path}?index=${index.join(",")}`);
  } catch (err) {
    const cell = row.cells[col.name];
    if (err.code === "NO_EXTRACTED_DATA" && cell?.array) {
      // Only the table's array summary exists (e.g. a value written through the API): plot that.
      const s = await api(`${base}/array/${path}`);
      area.append(el("div", { class: "note", text: `${err.message}; showing the table's value` }));
      if (s.shape.length === 2 && s.summaryType === "trendline") lineChart(area, s.data.slice(0, s.shape[1]), s.data.slice(s.shape[1]), "x", col.title);
      else if (s.shape.length === 1) lineChart(area, s.data.map((_, i) => i), s.data, "index", col.title);
      else {
        const plane = s.data.slice(0, s.shape.at(-1) * s.shape.at(-2));
        imageChart(area, { shape: s.shape, dims: s.shape.map((_, i) => `dim_${i}`), coords: {}, data: plane, limits: [Math.min(...plane), Math.max(...plane)] });
      }
    } else {
      // The cell says so too, until its value changes.
      state.noData.set(`${row.key}/${col.name}`, err.message);
      td?.classList.add("nodata");
      if (td) td.title = err.message;
      area.append(el("div", { class: "error plot-error", text: err.message }));
    }
    delete area.dataset.loading;
    return;
  }
  area.append(el("div", { class: "source", text: `${a.source}: ${a.dtype} ${a.shape.length ? `(${a.shape.join(", ")})` : "scalar"}` }));
  if (a.text !== undefined) area.append(el("div", { class: "scalar", text: a.text }));
  else if (a.shape.length === 1) {
    const d = a.dims[0];
    lineChart(area, a.coords[d] ?? a.data.map((_, i) => i), a.data, a.coords[d] ? d : "index", col.title);
  } else {
    if (a.shape.length > 2) {
      // N-D: pick the slice along each leading dimension.
      const pick = el("div", { class: "slice" }, el("span", { text: "slice " }));
      a.index.forEach((v, i) => {
        const input = el("input", { type: "number", min: "0", max: String(a.shape[i] - 1), value: String(v), "data-dim": String(i) });
        input.addEventListener("change", () => plotData(row, col, td, a.index.map((x, j) => (j === i ? Number(input.value) : x))));
        pick.append(el("span", { text: `${a.dims[i]} ` }), input);
      });
      area.append(pick);
    }
    imageChart(area, a);
  }
  delete area.dataset.loading;
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

/** A plain number cell travels as the bare number (its text is the number's own); make it a cell again. */
function expandCells(cells) {
  for (const [name, c] of Object.entries(cells)) if (typeof c === "number") cells[name] = { t: String(c), n: c };
}

function applyChange(change) {
  for (const row of change.rows) expandCells(row.cells);
  for (const p of change.patches ?? []) expandCells(p.cells);
  if (change.columns) state.columns = change.columns;
  for (const key of change.removed) state.rows.delete(key);
  for (const row of change.rows) state.rows.set(row.key, row);
  const patched = [];
  for (const p of change.patches ?? []) {
    const row = state.rows.get(p.key);
    if (!row) continue;
    row.start = p.start;
    Object.assign(row.cells, p.cells);
    for (const name of p.cleared) delete row.cells[name];
    for (const name of Object.keys(p.cells)) state.noData.delete(`${p.key}/${name}`);
    patched.push(p.key);
  }
  if (change.columns || change.removed.length || change.rows.length || !patchRows(patched)) render();
}

async function reloadTable() {
  try {
    const t = await api(`/api/db/${state.db}/table`);
    state.rows = new Map();
    applyProcessing(t.processing ?? []);
    applyChange({ columns: t.columns, rows: t.rows, patches: [], removed: [] });
  } catch (err) {
    status(`could not reload the table: ${err.message}`, true);
  }
}

function applyProcessing(list) {
  const before = new Set(state.processing.keys());
  state.processing = new Map();
  for (const p of list) {
    const key = `${p.proposal}/${p.run}`;
    state.processing.set(key, [...(state.processing.get(key) ?? []), p]);
  }
  const keys = new Set([...before, ...state.processing.keys()]);
  for (const key of keys) {
    const old = document.querySelector(`tbody tr[data-run="${CSS.escape(key)}"]`);
    if (old && state.rows.has(key)) old.replaceWith(renderRow(state.rows.get(key), state.cols));
  }
}

async function start() {
  const app = document.getElementById("app");
  state.db = viewFromUrl();
  // Both requests at once: the table is usually what the page waits for.
  // Changes from the moment the table is asked for: kept until it arrives, then applied (applying a change the
  // table already has changes nothing), so a commit between the two is not missed.
  let early = [];
  const events = new EventSource(`/api/db/${state.db}/events`);
  events.addEventListener("change", (e) => (early ? early.push(JSON.parse(e.data)) : applyChange(JSON.parse(e.data))));
  events.addEventListener("processing", (e) => (early ? early.push({ processing: JSON.parse(e.data) }) : applyProcessing(JSON.parse(e.data))));
  let lost = false;
  events.onerror = () => {
    lost = true;
    status("live updates interrupted; reconnecting…", true);
  };
  events.onopen = () => {
    status("live");
    // Changes made while the stream was down were not sent: take the whole table again.
    if (lost && !early) reloadTable();
    lost = false;
  };
  const tableRequest = api(`/api/db/${state.db}/table`).catch((err) => ({ failed: err }));
  const info = await api("/api/databases");
  state.dbs = info.databases;
  state.readOnly = info.readOnly;
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
    el("div", { class: "scroll", onscroll: () => requestAnimationFrame(() => renderBody()) }, el("table", { id: "table" })),
    el("section", { id: "time-comments" }),
  );
  const db = state.dbs[state.db];
  if (!db || db.problem) {
    events.close();
    status(db ? `${db.dir} cannot be shown: ${db.problem}` : `no database ${state.db}`, true);
    return;
  }
  const t = await tableRequest;
  if (t.failed) throw t.failed;
  // Marks for bench/web: where the first render's time goes (the table's response is in resource timing).
  performance.mark("damnit:table-parsed");
  state.processing = new Map();
  applyProcessing(t.processing ?? []);
  applyChange({ columns: t.columns, rows: t.rows, patches: [], removed: [] });
  const table = document.getElementById("table");
  table.addEventListener("click", (e) => {
    const hit = cellTarget(e);
    if (hit && !hit.col.editable) plotData(hit.row, hit.col, hit.td);
  });
  table.addEventListener("dblclick", (e) => {
    const hit = cellTarget(e);
    if (hit && hit.col.editable) editCell(hit.td, hit.row, hit.col);
  });
  window.addEventListener("resize", () => renderBody());
  window.damnitTable = { scrollToRun };
  tag.append(...t.tags.map((n) => el("option", { value: n, text: n })));
  tag.value = state.view.tag;
  tag.onchange = () => {
    state.view.tag = tag.value;
    render();
  };
  document.getElementById("time-comments").append(el("h3", { text: "Time comments" }), ...t.timeComments.map((c) => el("div", { text: `${new Date(c.timestamp * 1000).toISOString().slice(0, 19)}  ${c.comment}` })));
  loadViews();
  for (const e of early) {
    if (e.processing) applyProcessing(e.processing);
    else applyChange(e);
  }
  early = null;
  performance.mark("damnit:rendered");
  document.body.dataset.ready = "1";
}

start().catch((err) => status(`failed to load: ${err.message}`, true));

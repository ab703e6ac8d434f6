// counterd console: live view, lines editor, counts and health, in plain JavaScript (no build).
// Everything comes from the daemon's own API; the browser's login (Digest/Basic) covers it all.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#ffb000", "#00c2ff", "#ff5cab", "#7ee081", "#c792ff", "#ff7847"];
const CLASS_COLORS = {person: "#1f6feb", bicycle: "#12b76a", car: "#f79009", motorcycle: "#9e77ed",
                      bus: "#ee46bc", truck: "#667085"};
const FRAME_EVERY_MS = 1000;
const HEALTH_EVERY_MS = 3000;
const CHART_EVERY_MS = 60000;

const state = {
  me: {role: "viewer", can_edit: false, live_view: false},
  width: 640, height: 360, sizeKnown: false, band: 6,
  saved: [],          // lines as the daemon runs them
  draft: [],          // the editor's copy: {name, start, end, invert, ..., was}
  dirty: false, edits: 0, selected: -1, drag: null,    // edits: counts changes and saves
  tracks: [], frameUrl: null, lastSeq: null, configPath: "",
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

// Absolute URLs: a page opened as http://user:pw@box/ resolves relative ones with the login in
// them, which fetch() refuses; the browser sends the login it holds for the box either way.
const at = (path) => location.origin + path;

async function getJSON(url) {
  const response = await fetch(at(url), {cache: "no-store"});
  if (!response.ok) throw new Error(`${url}: ${response.status} ${(await response.text()).trim()}`);
  return response.json();
}

function setStatus(id, text, kind = "") {
  const node = $(id);
  node.textContent = text;
  node.className = "status " + kind;
}

// ---- who am I ---------------------------------------------------------------------------------

async function loadMe() {
  state.me = await getJSON("/api/v1/whoami");
  document.body.classList.toggle("viewer", !state.me.can_edit);
  const who = $("who");
  who.textContent = "";
  if (state.me.can_edit) {
    who.textContent = `${state.me.name} (${state.me.role})`;
  } else {
    who.append(`${state.me.name} (viewer, read-only) `);
    const link = document.createElement("a");
    link.href = "/login";
    link.textContent = "Log in to edit";
    link.id = "login";
    who.append(link);
  }
  $("lines-hint").textContent = state.me.can_edit
    ? "Drag a line's ends on the picture, or type coordinates (frame pixels). Save applies the lines at once and writes them to the config file."
    : "Read-only: log in as an operator to change the lines.";
}

// ---- the picture ------------------------------------------------------------------------------

function setSize(width, height) {
  if (!width || !height) return;
  state.sizeKnown = true;
  if (width === state.width && height === state.height) return;
  state.width = width;
  state.height = height;
  $("scene").setAttribute("viewBox", `0 0 ${width} ${height}`);
  for (const id of ["blank", "frame"]) {
    $(id).setAttribute("width", width);
    $(id).setAttribute("height", height);
  }
  $("scene-note").setAttribute("y", height - 12);
  $("scene-note").setAttribute("font-size", Math.max(12, width / 40));
  drawLines();
}

async function refreshView() {
  try {
    const view = await getJSON("/api/v1/view");
    state.me.live_view = view.live_view;
    setSize(view.width, view.height);
    const note = $("scene-note");
    if (!view.live_view) {
      clearFrame();
      note.textContent = "Live view is off on this box (api.live_view = false): lines only.";
      state.tracks = view.tracks;
      setStatus("view-status", `No picture: api.live_view is off. Frame ${state.width}×${state.height} px.`);
    } else if (view.seq === null) {
      note.textContent = view.camera ? "Waiting for the first frame…" : "No camera in this process.";
      setStatus("view-status", note.textContent);
    } else if (view.seq !== state.lastSeq) {
      await loadFrame();
      note.textContent = "";
    }
    drawTracks();
  } catch (error) {
    setStatus("view-status", `Live view: ${error.message}`, "error");
  }
}

async function loadFrame() {
  const response = await fetch(at("/api/v1/frame.jpg"), {cache: "no-store"});
  if (!response.ok) {
    // 403: the live view was turned off since /api/v1/view said it was on; drop the picture now.
    if (response.status === 403) clearFrame();
    setStatus("view-status", (await response.text()).trim(), "error");
    return;
  }
  const blob = await response.blob();
  state.tracks = JSON.parse(response.headers.get("X-Frame-Tracks") || "[]");
  state.lastSeq = Number(response.headers.get("X-Frame-Seq"));
  const url = URL.createObjectURL(blob);
  const image = $("frame");
  const decoded = await new Promise((resolve) => {
    const probe = new Image();
    probe.onload = () => { setSize(probe.naturalWidth, probe.naturalHeight); resolve(true); };
    probe.onerror = () => resolve(false);
    probe.src = url;
  });
  if (!decoded) {
    URL.revokeObjectURL(url);
    setStatus("view-status", "The frame could not be decoded.", "error");
    return;
  }
  image.setAttribute("href", url);
  image.dataset.loaded = String(state.lastSeq);
  if (state.frameUrl) URL.revokeObjectURL(state.frameUrl);
  state.frameUrl = url;
  const when = new Date(Number(response.headers.get("X-Frame-Timestamp")) * 1000);
  setStatus("view-status", `Frame ${state.lastSeq} at ${when.toLocaleTimeString()}, ${state.width}×${state.height} px, ` +
                           `${state.tracks.length} tracked object(s).`);
}

function clearFrame() {
  $("frame").removeAttribute("href");
  if (state.frameUrl) URL.revokeObjectURL(state.frameUrl);
  state.frameUrl = null;
  state.lastSeq = null;
}

function drawTracks() {
  const group = $("tracks");
  group.replaceChildren();
  const font = Math.max(11, state.width / 55);
  for (const track of state.tracks) {
    const [x1, y1, x2, y2] = track.box;
    el("rect", {x: x1, y: y1, width: x2 - x1, height: y2 - y1, class: "track",
                fill: "none", stroke: "#39ff88", "stroke-width": Math.max(1.5, state.width / 400)}, group);
    const label = el("text", {x: x1, y: Math.max(font, y1 - 3), fill: "#39ff88", "font-size": font,
                              "paint-order": "stroke", stroke: "#000", "stroke-width": 3}, group);
    label.textContent = `#${track.id} ${track.class}`;
  }
}

// ---- lines: drawing and dragging ----------------------------------------------------------------

function unit(line) {
  const dx = line.end[0] - line.start[0], dy = line.end[1] - line.start[1];
  const length = Math.hypot(dx, dy) || 1;
  const sign = line.invert ? -1 : 1;          // "in" is toward (dy, -dx); invert swaps it
  return {nx: sign * dy / length, ny: sign * -dx / length};
}

function drawLines() {
  const group = $("overlay");
  group.replaceChildren();
  const scale = state.width / 640;
  state.draft.forEach((line, i) => {
    const color = COLORS[i % COLORS.length];
    const [x1, y1] = line.start, [x2, y2] = line.end;
    const {nx, ny} = unit(line);
    const b = state.band;
    el("polygon", {points: `${x1 + nx * b},${y1 + ny * b} ${x2 + nx * b},${y2 + ny * b} ` +
                           `${x2 - nx * b},${y2 - ny * b} ${x1 - nx * b},${y1 - ny * b}`,
                   fill: color, "fill-opacity": 0.3, stroke: color, "stroke-opacity": 0.8,
                   "stroke-dasharray": `${4 * scale} ${3 * scale}`, "stroke-width": scale, class: "band"}, group);
    const stroke = el("line", {x1, y1, x2, y2, stroke: color, "stroke-width": (i === state.selected ? 4 : 2.5) * scale,
                               class: "line", "data-index": i}, group);
    stroke.addEventListener("pointerdown", () => select(i));
    const mx = (x1 + x2) / 2, my = (y1 + y2) / 2, arrow = 34 * scale;
    const tx = mx + nx * arrow, ty = my + ny * arrow;
    el("line", {x1: mx, y1: my, x2: tx, y2: ty, stroke: color, "stroke-width": 2.5 * scale}, group);
    const head = 8 * scale;
    el("polygon", {points: `${tx + nx * head},${ty + ny * head} ${tx - ny * head * 0.7},${ty + nx * head * 0.7} ` +
                           `${tx + ny * head * 0.7},${ty - nx * head * 0.7}`, fill: color}, group);
    label(group, tx + nx * 14 * scale, ty + ny * 14 * scale + 5 * scale, "in", color, 14 * scale, "middle");
    label(group, x1 + 8 * scale, y1 - 8 * scale, line.name, color, 16 * scale, "start");
    if (state.me.can_edit) {
      for (const end of ["start", "end"]) {
        const [hx, hy] = line[end];
        const handle = el("circle", {cx: hx, cy: hy, r: 9 * scale, fill: "#fff", stroke: color,
                                     "stroke-width": 3 * scale, class: "handle", id: `handle-${i}-${end}`}, group);
        handle.addEventListener("pointerdown", (event) => startDrag(event, i, end));
      }
    }
  });
}

function label(group, x, y, text, color, size, anchor) {
  const node = el("text", {x, y, fill: color, "font-size": size, "font-weight": "bold", "text-anchor": anchor,
                           "paint-order": "stroke", stroke: "#000", "stroke-width": size / 5}, group);
  node.textContent = text;
}

function toFrame(event) {
  const matrix = $("scene").getScreenCTM().inverse();
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix);
  return [Math.round(Math.min(state.width, Math.max(0, point.x))),
          Math.round(Math.min(state.height, Math.max(0, point.y)))];
}

function startDrag(event, index, end) {
  event.preventDefault();
  event.stopPropagation();
  select(index);
  state.drag = {index, end, pointer: event.pointerId};
  $("scene").setPointerCapture(event.pointerId);
}

function moveDrag(event) {
  if (!state.drag) return;
  state.draft[state.drag.index][state.drag.end] = toFrame(event);
  markDirty();
  drawLines();
  renderLineTable();
}

function endDrag(event) {
  if (!state.drag) return;
  $("scene").releasePointerCapture(state.drag.pointer);
  state.drag = null;
}

function select(index) {
  state.selected = index;
  drawLines();
  renderLineTable();
}

// ---- lines: the table ---------------------------------------------------------------------------

function renderLineTable() {
  const body = $("lines-table").tBodies[0];
  body.replaceChildren();
  const editable = state.me.can_edit;
  state.draft.forEach((line, i) => {
    const row = body.insertRow();
    row.className = i === state.selected ? "selected" : "";
    row.dataset.index = i;
    const name = input("text", line.name, editable, (value) => { line.name = value; });
    name.className = "line-name";
    row.insertCell().append(name);
    for (const end of ["start", "end"]) {
      const cell = row.insertCell();
      for (const axis of [0, 1]) {
        cell.append(input("number", line[end][axis], editable, (value) => {
          line[end][axis] = Math.min(axis ? state.height : state.width, Math.max(0, Number(value) || 0));
        }), " ");
      }
    }
    const invert = input("checkbox", line.invert, editable, (value) => { line.invert = value; });
    row.insertCell().append(invert);
    const actions = row.insertCell();
    if (editable) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "✕";
      remove.title = "Delete this line";
      remove.setAttribute("aria-label", "Delete this line");
      remove.className = "delete";
      remove.addEventListener("click", () => {
        state.draft.splice(i, 1);
        state.selected = -1;
        markDirty();
        drawLines();
        renderLineTable();
      });
      actions.append(remove);
    }
    row.addEventListener("click", (event) => { if (event.target.tagName !== "INPUT") select(i); });
  });
}

function input(type, value, editable, onChange) {
  const node = document.createElement("input");
  node.type = type;
  if (type === "checkbox") node.checked = value; else node.value = value;
  node.disabled = !editable;
  node.addEventListener(type === "checkbox" ? "change" : "input", () => {
    onChange(type === "checkbox" ? node.checked : node.value);
    markDirty();
    drawLines();
  });
  return node;
}

function markDirty() {
  state.dirty = true;
  state.edits += 1;
  $("save-lines").disabled = false;
  $("revert-lines").disabled = false;
  setStatus("lines-status", "Unsaved changes.");
}

function copyLines(lines) {
  return lines.map((line) => ({...line, start: [...line.start], end: [...line.end], was: line.name}));
}

function takeLines(doc) {
  state.saved = doc.lines;
  state.band = doc.band_px;
  state.configPath = doc.config_path;
  setSize(doc.width, doc.height);
  if (!state.dirty) {
    state.draft = copyLines(doc.lines);
    drawLines();
    renderLineTable();
  }
  const picker = $("chart-line");
  const chosen = picker.value;
  picker.replaceChildren(new Option("all lines", ""), ...doc.lines.map((l) => new Option(l.name, l.name)));
  picker.value = doc.lines.some((l) => l.name === chosen) ? chosen : "";
}

async function loadLines() {
  takeLines(await getJSON("/api/v1/lines"));
}

// The periodic refresh: an answer that overtook an edit or a save started meanwhile is older
// than what the page shows, so it is dropped (the next refresh brings the lines as saved).
async function refreshLines() {
  if (state.dirty) return;
  const edits = state.edits;
  const doc = await getJSON("/api/v1/lines");
  if (!state.dirty && edits === state.edits) takeLines(doc);
}

function addLine() {
  const w = state.width, h = state.height;
  let n = state.draft.length + 1;
  while (state.draft.some((l) => l.name === `line ${n}`)) n += 1;
  state.draft.push({name: `line ${n}`, start: [Math.round(w * 0.3), Math.round(h / 2)],
                    end: [Math.round(w * 0.7), Math.round(h / 2)], invert: false,
                    tailgate_seconds: null, forbidden_direction: "", was: null});
  state.selected = state.draft.length - 1;
  markDirty();
  drawLines();
  renderLineTable();
}

async function saveLines() {
  state.edits += 1;
  $("save-lines").disabled = true;
  setStatus("lines-status", "Saving…");
  const response = await fetch(at("/api/v1/lines"), {method: "PUT", headers: {"Content-Type": "application/json"},
                                                 body: JSON.stringify({lines: state.draft})});
  const text = await response.text();
  if (!response.ok) {
    $("save-lines").disabled = false;
    setStatus("lines-status", `Not saved: ${text.trim()}`, "error");
    return;
  }
  const doc = JSON.parse(text);
  state.dirty = false;
  $("revert-lines").disabled = true;
  takeLines(doc);
  setStatus("lines-status", `Saved: ${doc.message}.`, "ok");
}

function revertLines() {
  state.dirty = false;
  state.selected = -1;
  state.draft = copyLines(state.saved);
  $("save-lines").disabled = true;
  $("revert-lines").disabled = true;
  setStatus("lines-status", "Changes undone.");
  drawLines();
  renderLineTable();
}

// ---- counts -------------------------------------------------------------------------------------

function renderTotals(totals) {
  const rows = new Map();
  for (const c of totals.counts) {
    const key = `${c.line}\u0000${c.class}`;
    const row = rows.get(key) || {line: c.line, cls: c.class, in: 0, out: 0};
    row[c.direction] += c.count;
    rows.set(key, row);
  }
  const body = $("totals").tBodies[0];
  body.replaceChildren();
  if (!rows.size) {
    body.innerHTML = '<tr><td colspan="4" class="hint">no crossings yet today</td></tr>';
    return;
  }
  for (const row of rows.values()) {
    const tr = body.insertRow();
    tr.dataset.line = row.line;
    tr.dataset.class = row.cls;
    for (const [text, cls] of [[row.line, ""], [row.cls, ""], [row.in, "num in"], [row.out, "num out"]]) {
      const td = tr.insertCell();
      td.textContent = text;
      td.className = cls;
    }
  }
}

function watchTotals() {
  const stream = new EventSource(at("/api/v1/live/stream"));
  let chartDue = 0;
  stream.addEventListener("totals", (event) => {
    renderTotals(JSON.parse(event.data));
    if (Date.now() > chartDue) {          // the bins follow the totals, at most every 10 s
      chartDue = Date.now() + 10000;
      loadChart();
    }
  });
}

async function loadChart() {
  try {
    const line = $("chart-line").value;
    const doc = await getJSON("/api/v1/counts?res=15m" + (line ? "&line=" + encodeURIComponent(line) : ""));
    drawChart(doc.bins);
  } catch (error) {
    $("chart-legend").textContent = `Chart: ${error.message}`;
  }
}

function drawChart(bins) {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = 220;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const classes = [...new Set(bins.flatMap((b) => b.counts.map((c) => c.class)))].sort();
  const sums = bins.map((b) => {
    const s = {in: {}, out: {}};
    for (const c of b.counts) s[c.direction][c.class] = (s[c.direction][c.class] || 0) + c.count;
    return s;
  });
  const total = (d) => Object.values(d).reduce((a, v) => a + v, 0);
  const peak = Math.max(1, ...sums.map((s) => Math.max(total(s.in), total(s.out))));
  // The whole day, 00:00 to 24:00, in 15-minute slots: bins still to come are empty.
  const left = 30, mid = height / 2, half = mid - 18, slots = 96;
  const step = (width - left) / slots;
  const slot = (b) => (Number(b.start.slice(11, 13)) * 60 + Number(b.start.slice(14, 16))) / 15;
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#667085";
  g.fillText(String(peak), 2, mid - half + 8);
  g.fillText("in", 2, mid - 4);
  g.fillText("out", 2, mid + 12);
  g.fillText(String(peak), 2, mid + half);
  sums.forEach((s, i) => {
    const x = left + slot(bins[i]) * step;
    let up = 0, down = 0;
    for (const cls of classes) {
      g.fillStyle = CLASS_COLORS[cls] || "#98a2b3";
      const a = (s.in[cls] || 0) / peak * half, b = (s.out[cls] || 0) / peak * half;
      g.fillRect(x + 0.5, mid - up - a, Math.max(1, step - 1), a);
      g.fillRect(x + 0.5, mid + down, Math.max(1, step - 1), b);
      up += a;
      down += b;
    }
  });
  g.strokeStyle = "#98a2b3";
  g.beginPath();
  g.moveTo(left, mid);
  g.lineTo(width, mid);
  g.stroke();
  g.fillStyle = "#667085";
  for (let hour = 0; hour < 24; hour += 3) {
    g.fillText(`${String(hour).padStart(2, "0")}:00`, left + hour * 4 * step, height - 2);
  }
  const legend = $("chart-legend");
  legend.replaceChildren();
  for (const cls of classes) {
    const span = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = CLASS_COLORS[cls] || "#98a2b3";
    span.append(swatch, cls);
    legend.append(span);
  }
  if (!classes.length) legend.textContent = "No crossings stored today yet.";
  canvas.dataset.bins = String(bins.length);
  canvas.dataset.total = String(sums.reduce((a, s) => a + total(s.in) + total(s.out), 0));
}

// ---- health -------------------------------------------------------------------------------------

function minutes(seconds) {
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

async function refreshHealth() {
  let h;
  try {
    h = await getJSON("/api/v1/health");
  } catch (error) {
    $("health-list").textContent = error.message;
    return;
  }
  const items = [];
  if (h.camera) {
    items.push(["Camera", h.camera.state + (h.camera.reason ? ` (${h.camera.reason})` : "")],
               ["Frames/s", h.frames_per_s === null ? "measuring…" : h.frames_per_s.toFixed(1)],
               ["Stage times (mean)", Object.entries(h.stage_ms.mean).map(([k, v]) => `${k} ${v.toFixed(1)} ms`).join(", ")],
               ["Frames", `${h.frames_processed} analysed, ${h.camera.frames_dropped} dropped`],
               ["Reconnects", String(h.camera.reconnects)],
               ["Model", h.model]);
    if (h.last_error) items.push(["Last error", h.last_error]);
  } else {
    items.push(["Camera", "no camera in this process"]);
  }
  items.push(["Coverage, last hour", `${minutes(h.coverage_last_hour_s)} of 60 min analysed`]);
  const up = h.upload;
  if (up) {
    items.push(["Upload", up.enabled ? "on" : "off"],
               ["Outbox", `${up.pending_reports} waiting, ${up.quarantined_reports} quarantined`],
               ["Last delivery", up.last_success ? `${up.last_success.time} (${up.last_success.file})` : "none yet"]);
    if (up.last_error) items.push(["Last upload error", `${up.last_error.time}: ${up.last_error.message}`]);
  }
  items.push(["Uptime", minutes(h.uptime_s || 0)]);
  const list = $("health-list");
  list.replaceChildren();
  for (const [term, value] of items) {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = term;
    dd.textContent = value;
    list.append(dt, dd);
  }
  if (h.log) {
    $("log-box").hidden = false;
    $("log").textContent = h.log.join("\n");
  }
}

// ---- start ----------------------------------------------------------------------------------------

async function start() {
  const scene = $("scene");
  scene.addEventListener("pointermove", moveDrag);
  scene.addEventListener("pointerup", endDrag);
  scene.addEventListener("pointercancel", endDrag);
  $("add-line").addEventListener("click", addLine);
  $("save-lines").addEventListener("click", saveLines);
  $("revert-lines").addEventListener("click", revertLines);
  $("chart-line").addEventListener("change", loadChart);
  window.addEventListener("resize", loadChart);
  try {
    await loadMe();
    await loadLines();
  } catch (error) {
    setStatus("view-status", error.message, "error");
    return;
  }
  const name = await getJSON("/local/tvpc/.api?params.json").then((p) => p.Counter.Name, () => "");
  $("camera-name").textContent = name;
  watchTotals();
  loadChart();
  refreshHealth();
  const tick = async () => { await refreshView(); setTimeout(tick, FRAME_EVERY_MS); };
  tick();
  setInterval(refreshHealth, HEALTH_EVERY_MS);
  setInterval(loadChart, CHART_EVERY_MS);
  setInterval(() => refreshLines().catch(() => {}), 10000);
  document.body.dataset.ready = "true";
}

start();

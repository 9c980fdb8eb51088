// The flame graph page. The payload is decoded once into typed arrays; every
// filter change derives a "view" tree from it (lifting hidden frames into
// their parents and merging equal siblings), which is laid out and drawn on a
// canvas. Only rectangles wide enough to see are visited, so big trees stay
// responsive.

const ROW_HEIGHT = 18;
const MIN_DRAWN_WIDTH = 0.35; // pixels
const MIN_LABEL_WIDTH = 28; // pixels
const INTERESTING = 1;
const IMPORT_SYSTEM = 2;

const payload = loadPayload();
const meta = payload.meta;
const strings = payload.strings;
const model = decodeModel(payload);
const memory = payload.memory;
const temporal = decodeTemporal(payload.temporal);
const snapshotCount = memory.time.length + 1;

const state = {
  thread: -1,
  hideUninteresting: true,
  hideImportSystem: false,
  module: "",
  inverted: meta.inverted,
  icicles: true,
  search: "",
  zoom: 0,
  windowStart: 0,
  windowEnd: snapshotCount - 1,
  peakSnapshot: null, // temporal peak view: the snapshot the graph shows
  peakJumped: false,
};
// The settings a shared URL may change (see view_hash.js), as they are by default.
const defaultView = { ...state };

let view = null; // the current view tree
let rects = null; // what the last layout placed on the canvas
let searchResult = { matchedFrames: null, nodes: 0, bytes: 0 };
let plotGeometry = null; // how the last memory plot maps time to x
let drawnPlotLines = []; // what the last memory plot drew, for tests

// ---------------------------------------------------------------- decoding

function decodeModel(p) {
  const n = p.nodes.frame.length;
  const parent = new Int32Array(n);
  const gaps = p.nodes.parent_gap;
  for (let i = 1; i < n; i++) parent[i] = i - gaps[i];
  parent[0] = -1;
  return {
    n,
    parent,
    frame: Int32Array.from(p.nodes.frame),
    thread: Int32Array.from(p.nodes.thread),
    bytes: Float64Array.from(p.nodes.bytes),
    count: Float64Array.from(p.nodes.count),
    flags: Uint8Array.from(p.nodes.flags),
    frameFunction: p.frames.function,
    frameFile: p.frames.filename,
    frameLine: p.frames.lineno,
    threads: p.threads,
  };
}

function decodeTemporal(t) {
  if (!t) return null;
  return {
    alloc: Int32Array.from(t.alloc),
    dealloc: Int32Array.from(t.dealloc),
    node: Int32Array.from(t.node),
    count: Float64Array.from(t.count),
    bytes: Float64Array.from(t.bytes),
    hwm: t.hwm,
  };
}

function functionOf(frame) {
  return strings[model.frameFunction[frame]];
}

function fileOf(frame) {
  return strings[model.frameFile[frame]];
}

// ------------------------------------------------------------ node values

// Own (exclusive) bytes and counts of every model node for the whole capture.
const staticSelf = (() => {
  const { n, parent, bytes, count } = model;
  const selfBytes = Float64Array.from(bytes);
  const selfCount = Float64Array.from(count);
  for (let i = 1; i < n; i++) {
    selfBytes[parent[i]] -= bytes[i];
    selfCount[parent[i]] -= count[i];
  }
  return { selfBytes, selfCount };
})();

// Own bytes and counts for the chosen time window, following memray's
// temporal_flamegraph.js: with high-water marks, the allocations live at the
// highest snapshot of the window; without, those allocated within the window
// and still live at its end.
function temporalSelf(start, end) {
  const selfBytes = new Float64Array(model.n);
  const selfCount = new Float64Array(model.n);
  const { alloc, dealloc, node, count, bytes, hwm } = temporal;
  const live = (i, at) => dealloc[i] < 0 || dealloc[i] > at;
  let include;
  let peakSnapshot = null;
  if (hwm) {
    peakSnapshot = start;
    for (let k = start; k <= end; k++) if (hwm[k] > hwm[peakSnapshot]) peakSnapshot = k;
    include = (i) => alloc[i] <= peakSnapshot && live(i, peakSnapshot);
  } else {
    include = (i) => alloc[i] >= start && alloc[i] <= end && live(i, end);
  }
  for (let i = 0; i < alloc.length; i++) {
    if (include(i)) {
      selfBytes[node[i]] += bytes[i];
      selfCount[node[i]] += count[i];
    }
  }
  return { selfBytes, selfCount, peakSnapshot };
}

// ------------------------------------------------------------- view trees

// A growable tree of parallel typed arrays; parents precede children.
class Tree {
  constructor(capacity) {
    this.size = 0;
    this.parent = new Int32Array(capacity);
    this.frame = new Int32Array(capacity);
    this.thread = new Int32Array(capacity);
    this.bytes = new Float64Array(capacity);
    this.count = new Float64Array(capacity);
  }

  add(parent, frame, thread) {
    if (this.size === this.parent.length) this.grow();
    const id = this.size++;
    this.parent[id] = parent;
    this.frame[id] = frame;
    this.thread[id] = thread;
    return id;
  }

  grow() {
    const capacity = Math.max(16, this.parent.length * 2);
    for (const name of ["parent", "frame", "thread", "bytes", "count"]) {
      const bigger = new this[name].constructor(capacity);
      bigger.set(this[name]);
      this[name] = bigger;
    }
  }

  // Turns own values into inclusive ones.
  sumSubtrees() {
    for (let i = this.size - 1; i > 0; i--) {
      this.bytes[this.parent[i]] += this.bytes[i];
      this.count[this.parent[i]] += this.count[i];
    }
  }

  // Child lists in creation (capture) order, as one compressed array.
  linkChildren() {
    const n = this.size;
    const start = new Int32Array(n + 1);
    for (let i = 1; i < n; i++) start[this.parent[i] + 1]++;
    for (let i = 0; i < n; i++) start[i + 1] += start[i];
    const next = start.slice(0, n);
    const list = new Int32Array(Math.max(0, n - 1));
    for (let i = 1; i < n; i++) list[next[this.parent[i]]++] = i;
    this.childStart = start;
    this.childList = list;
  }
}

// Maps (parent, frame key) pairs to node ids: open addressing over typed
// arrays, several times faster than a Map with composite number keys.
class PairTable {
  constructor(expected) {
    let capacity = 1024;
    while (capacity < expected * 2) capacity *= 2;
    this.mask = capacity - 1;
    this.used = 0;
    this.first = new Int32Array(capacity);
    this.second = new Int32Array(capacity);
    this.value = new Int32Array(capacity).fill(-1);
  }

  slot(first, second) {
    let i = (Math.imul(first, 0x9e3779b1) ^ Math.imul(second, 0x85ebca77)) & this.mask;
    while (this.value[i] !== -1 && (this.first[i] !== first || this.second[i] !== second)) {
      i = (i + 1) & this.mask;
    }
    return i;
  }

  // Stores `id` for the pair in the free slot that `slot` returned.
  put(slot, first, second, id) {
    this.first[slot] = first;
    this.second[slot] = second;
    this.value[slot] = id;
    if (++this.used * 2 > this.mask) this.grow();
  }

  grow() {
    const old = this;
    const bigger = new PairTable(this.mask + 1);
    for (let i = 0; i <= old.mask; i++) {
      if (old.value[i] !== -1) {
        const j = bigger.slot(old.first[i], old.second[i]);
        bigger.first[j] = old.first[i];
        bigger.second[j] = old.second[i];
        bigger.value[j] = old.value[i];
      }
    }
    Object.assign(this, { mask: bigger.mask, first: bigger.first, second: bigger.second, value: bigger.value });
  }
}

// The frames whose file matches the module filter.
function moduleFrames(term) {
  const frames = new Uint8Array(model.frameFunction.length);
  for (let f = 0; f < frames.length; f++) {
    frames[f] = fileOf(f).toLowerCase().includes(term) ? 1 : 0;
  }
  return frames;
}

// Applies the thread, module and frame filters to the model's own values.
function buildView(self) {
  const { n, parent, frame, thread, flags } = model;
  const threads = Math.max(1, model.threads.length);
  const term = state.module.trim().toLowerCase();
  const matchingFrames = term ? moduleFrames(term) : null;
  const inModule = term ? new Uint8Array(n) : null;
  const tree = new Tree(Math.min(n, 1 << 16));
  const placedAt = new Int32Array(n);
  const byKey = new PairTable(n);
  tree.add(-1, frame[0], thread[0]);
  if (state.thread < 0 && !term) {
    tree.bytes[0] = self.selfBytes[0];
    tree.count[0] = self.selfCount[0];
  }
  for (let i = 1; i < n; i++) {
    const p = parent[i];
    if (inModule) inModule[i] = inModule[p] | matchingFrames[frame[i]];
    const hidden =
      (state.hideUninteresting && !(flags[i] & INTERESTING)) ||
      (state.hideImportSystem && flags[i] & IMPORT_SYSTEM);
    let target = placedAt[p];
    if (!hidden) {
      const key = frame[i] * threads + thread[i];
      const slot = byKey.slot(target, key);
      if (byKey.value[slot] === -1) {
        const added = tree.add(target, frame[i], thread[i]);
        byKey.put(slot, target, key, added);
        target = added;
      } else {
        target = byKey.value[slot];
      }
    }
    placedAt[i] = target;
    const counted = (state.thread < 0 || thread[i] === state.thread) && (!inModule || inModule[i]);
    if (counted) {
      tree.bytes[target] += self.selfBytes[i];
      tree.count[target] += self.selfCount[i];
    }
  }
  tree.sumSubtrees();
  return tree;
}

// Own values of a tree with inclusive ones.
function ownValues(tree) {
  const bytes = Float64Array.from(tree.bytes.subarray(0, tree.size));
  const count = Float64Array.from(tree.count.subarray(0, tree.size));
  for (let i = 1; i < tree.size; i++) {
    bytes[tree.parent[i]] -= tree.bytes[i];
    count[tree.parent[i]] -= tree.count[i];
  }
  return { bytes, count };
}

// The inverted tree: allocating frames at the base, their callers above.
function invertTree(tree) {
  const own = ownValues(tree);
  const threads = Math.max(1, model.threads.length);
  // Every path inserts at most its depth in nodes: size the tables once.
  const depth = new Int32Array(tree.size);
  let bound = 1;
  for (let v = 1; v < tree.size; v++) {
    depth[v] = depth[tree.parent[v]] + 1;
    if (own.bytes[v] !== 0 || own.count[v] !== 0) bound += depth[v];
  }
  const inverted = new Tree(bound);
  const byKey = new PairTable(bound);
  inverted.add(-1, tree.frame[0], tree.thread[0]);
  inverted.bytes[0] = tree.bytes[0];
  inverted.count[0] = tree.count[0];
  for (let v = 1; v < tree.size; v++) {
    const bytes = own.bytes[v];
    const count = own.count[v];
    if (bytes === 0 && count === 0) continue;
    let at = 0;
    for (let u = v; u > 0; u = tree.parent[u]) {
      const key = tree.frame[u] * threads + tree.thread[u];
      const slot = byKey.slot(at, key);
      if (byKey.value[slot] === -1) {
        const added = inverted.add(at, tree.frame[u], tree.thread[u]);
        byKey.put(slot, at, key, added);
        at = added;
      } else {
        at = byKey.value[slot];
      }
      inverted.bytes[at] += bytes;
      inverted.count[at] += count;
    }
  }
  return inverted;
}

function rebuild() {
  let self = staticSelf;
  if (temporal) {
    self = temporalSelf(state.windowStart, state.windowEnd);
    state.peakSnapshot = self.peakSnapshot;
  }
  let tree = buildView(self);
  if (state.inverted) tree = invertTree(tree);
  tree.linkChildren();
  view = tree;
  state.zoom = 0;
  updateSearch();
  render();
  drawMemoryPlot();
  updateWindowInfo();
}

// ------------------------------------------------------------------ search

function updateSearch() {
  const term = state.search.trim().toLowerCase();
  searchResult = { matchedFrames: null, nodes: 0, bytes: 0 };
  if (!term) return;
  const frames = new Uint8Array(model.frameFunction.length);
  for (let f = 0; f < frames.length; f++) {
    frames[f] =
      functionOf(f).toLowerCase().includes(term) || fileOf(f).toLowerCase().includes(term) ? 1 : 0;
  }
  // A match inside another match is already counted by the outer one.
  const underMatch = new Uint8Array(view.size);
  for (let v = 1; v < view.size; v++) {
    const p = view.parent[v];
    const matched = frames[view.frame[v]] === 1;
    underMatch[v] = underMatch[p] | (p > 0 && frames[view.frame[p]]);
    if (matched && view.bytes[v] + view.count[v] > 0) {
      searchResult.nodes++;
      if (!underMatch[v]) searchResult.bytes += view.bytes[v];
    }
  }
  searchResult.matchedFrames = frames;
}

function showSearchInfo() {
  const info = document.getElementById("search-info");
  if (!searchResult.matchedFrames) {
    info.textContent = "";
    return;
  }
  info.textContent =
    searchResult.nodes +
    " matching frames, " +
    humanBytes(searchResult.bytes) +
    " (" +
    formatPercent(searchResult.bytes, view.bytes[0]) +
    " of the total)";
  info.dataset.matchedBytes = searchResult.bytes;
  info.dataset.matchedNodes = searchResult.nodes;
}

// ------------------------------------------------------------------ layout

function layout(width) {
  const placed = { node: [], x: [], w: [], depth: [], ancestor: [], maxDepth: 0 };
  const put = (node, x, w, depth, ancestor) => {
    placed.node.push(node);
    placed.x.push(x);
    placed.w.push(w);
    placed.depth.push(depth);
    placed.ancestor.push(ancestor);
    if (depth > placed.maxDepth) placed.maxDepth = depth;
  };
  const chain = [];
  for (let u = state.zoom; u >= 0; u = view.parent[u]) chain.push(u);
  chain.reverse();
  chain.forEach((u, depth) => put(u, 0, width, depth, u !== state.zoom));
  const total = view.bytes[state.zoom];
  if (total <= 0) return placed;
  const scale = width / total;
  const stack = [[state.zoom, 0, chain.length - 1]];
  while (stack.length) {
    const [node, x, depth] = stack.pop();
    let childX = x;
    for (let c = view.childStart[node]; c < view.childStart[node + 1]; c++) {
      const child = view.childList[c];
      const w = view.bytes[child] * scale;
      if (w >= MIN_DRAWN_WIDTH) {
        put(child, childX, w, depth + 1, false);
        stack.push([child, childX, depth + 1]);
      }
      childX += w;
    }
  }
  return placed;
}

// ----------------------------------------------------------------- drawing

function hashUnit(text) {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) | 0;
  return ((hash >>> 0) % 1000) / 1000;
}

function frameColor(node) {
  const frame = view.frame[node];
  if (node === 0) return "hsl(210, 12%, 82%)";
  const name = functionOf(frame);
  if (name.startsWith("<") && name.endsWith("smaller stacks>")) return "hsl(0, 0%, 86%)";
  const file = fileOf(frame);
  const jitter = hashUnit(name);
  if (file.endsWith(".py")) return "hsl(" + (95 + 40 * jitter) + ", 48%, " + (72 + 8 * jitter) + "%)";
  if (/\.(c|cc|cpp|cxx|h|hpp|rs)$/.test(file) || file.includes(".so"))
    return "hsl(" + (35 + 20 * jitter) + ", 80%, " + (70 + 8 * jitter) + "%)";
  return "hsl(" + (200 + 30 * jitter) + ", 30%, " + (80 + 6 * jitter) + "%)";
}

// A frame's function: what the breadcrumb and the tooltip's title name.
function frameLabel(node) {
  const frame = view.frame[node];
  return functionOf(frame);
}

// What a box says, as in memray: the source line that ran, else
// "function at file:line" (no source embedded: unreadable or confidential).
function boxLabel(node) {
  const frame = view.frame[node];
  if (node === 0) return functionOf(frame);
  const source = sourceLine(frame);
  if (source) return source;
  const line = model.frameLine[frame];
  if (line < 1 || !fileOf(frame)) return functionOf(frame);
  return functionOf(frame) + " at " + fileOf(frame) + ":" + line;
}

function render() {
  const canvas = document.getElementById("flame");
  const width = canvas.parentElement.clientWidth - 32;
  rects = layout(width);
  const rows = rects.maxDepth + 1;
  const ratio = window.devicePixelRatio || 1;
  canvas.style.height = rows * ROW_HEIGHT + "px";
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(rows * ROW_HEIGHT * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, rows * ROW_HEIGHT);
  ctx.font = "12px ui-monospace, SFMono-Regular, Menlo, monospace";
  ctx.textBaseline = "middle";
  const matched = searchResult.matchedFrames;
  for (let r = 0; r < rects.node.length; r++) {
    const node = rects.node[r];
    const x = rects.x[r];
    const w = rects.w[r];
    const y = rowTop(rects.depth[r]);
    const highlighted = matched && node > 0 && matched[view.frame[node]];
    ctx.globalAlpha = rects.ancestor[r] ? 0.55 : 1;
    ctx.fillStyle = highlighted ? "#ff8c1a" : frameColor(node);
    ctx.fillRect(x, y, Math.max(w - (w > 3 ? 1 : 0), 0.5), ROW_HEIGHT - 1);
    if (w >= MIN_LABEL_WIDTH) {
      ctx.fillStyle = "#1f2328";
      ctx.fillText(fitText(ctx, boxLabel(node), w - 6), x + 3, y + ROW_HEIGHT / 2);
    }
  }
  ctx.globalAlpha = 1;
  updateStatus();
  showSearchInfo();
  replaceHash(writeViewHash(state, defaultView));
}

function rowTop(depth) {
  return state.icicles ? depth * ROW_HEIGHT : (rects.maxDepth - depth) * ROW_HEIGHT;
}

function fitText(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let low = 0;
  let high = text.length;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (ctx.measureText(text.slice(0, mid) + "…").width <= width) low = mid;
    else high = mid - 1;
  }
  return low > 0 ? text.slice(0, low) + "…" : "";
}

function updateStatus() {
  const path = [];
  for (let u = state.zoom; u >= 0; u = view.parent[u]) path.push(frameLabel(u));
  document.getElementById("breadcrumb").textContent = path.reverse().join(" › ");
  document.getElementById("reset-zoom").disabled = state.zoom === 0;
  const total = view.bytes[0];
  let text = "Total: " + humanBytes(total) + " in " + formatCount(view.count[0]) + " allocations";
  if (state.zoom !== 0) {
    text += " · zoomed: " + humanBytes(view.bytes[state.zoom]) + " (" + formatPercent(view.bytes[state.zoom], total) + ")";
  }
  const status = document.getElementById("view-total");
  status.textContent = text;
  status.dataset.totalBytes = total;
  status.dataset.zoomBytes = view.bytes[state.zoom];
}

// ------------------------------------------------------------- interaction

function rectAt(event) {
  const canvas = document.getElementById("flame");
  const box = canvas.getBoundingClientRect();
  const x = event.clientX - box.left;
  const y = event.clientY - box.top;
  for (let r = 0; r < rects.node.length; r++) {
    const top = rowTop(rects.depth[r]);
    if (y >= top && y < top + ROW_HEIGHT && x >= rects.x[r] && x < rects.x[r] + rects.w[r]) return r;
  }
  return -1;
}

function zoomTo(node) {
  state.zoom = node;
  render();
}

function sourceLine(frame) {
  const lines = payload.sources[model.frameFile[frame]];
  const line = model.frameLine[frame];
  if (!lines || line < 1 || line > lines.length) return null;
  return lines[line - 1].trim();
}

function showTooltip(event, node) {
  const tooltip = document.getElementById("tooltip");
  const frame = view.frame[node];
  const bytes = view.bytes[node];
  const count = view.count[node];
  const parts = ['<div class="function">' + escapeHtml(functionOf(frame)) + "</div>"];
  if (node > 0 && fileOf(frame)) {
    parts.push(escapeHtml(fileOf(frame)) + ":" + model.frameLine[frame]);
  }
  parts.push(
    "<b>" + humanBytes(bytes) + "</b> (" + formatCount(bytes) + " bytes), " +
      formatPercent(bytes, view.bytes[0]) + " of the total"
  );
  parts.push(formatCount(count) + (count === 1 ? " allocation" : " allocations"));
  if (!meta.merge_threads && node > 0) parts.push("Thread: " + escapeHtml(model.threads[view.thread[node]] || ""));
  const source = node > 0 ? sourceLine(frame) : null;
  if (source) parts.push("<pre>" + escapeHtml(source) + "</pre>");
  tooltip.innerHTML = parts.join("<br>");
  tooltip.hidden = false;
  const margin = 14;
  const left = Math.min(event.clientX + margin, window.innerWidth - tooltip.offsetWidth - 4);
  const top =
    event.clientY + margin + tooltip.offsetHeight > window.innerHeight
      ? event.clientY - tooltip.offsetHeight - margin
      : event.clientY + margin;
  tooltip.style.left = Math.max(4, left) + "px";
  tooltip.style.top = Math.max(4, top) + "px";
}

function initFlameEvents() {
  const canvas = document.getElementById("flame");
  canvas.addEventListener("click", (event) => {
    const r = rectAt(event);
    if (r >= 0) zoomTo(rects.node[r]);
  });
  canvas.addEventListener("mousemove", (event) => {
    const r = rectAt(event);
    if (r >= 0) showTooltip(event, rects.node[r]);
    else document.getElementById("tooltip").hidden = true;
  });
  canvas.addEventListener("mouseleave", () => (document.getElementById("tooltip").hidden = true));
  document.getElementById("reset-zoom").onclick = () => zoomTo(0);
  document.addEventListener("keyup", (event) => {
    if (event.key === "Escape") zoomTo(0);
  });
  const search = document.getElementById("search");
  search.addEventListener("input", () => {
    state.search = search.value;
    updateSearch();
    render();
  });
  const bindCheckbox = (id, key) => {
    const box = document.getElementById(id);
    box.addEventListener("change", () => {
      state[key] = box.checked;
      rebuild();
    });
  };
  bindCheckbox("hide-uninteresting", "hideUninteresting");
  bindCheckbox("hide-import-system", "hideImportSystem");
  bindCheckbox("invert", "inverted");
  for (const id of ["icicles", "flames"]) {
    document.getElementById(id).addEventListener("change", () => {
      state.icicles = document.getElementById("icicles").checked;
      render();
    });
  }
  onSettledInput("module-filter", 200, (value) => {
    state.module = value;
    rebuild();
  });
  initThreadSelect();
  let resizing = null;
  window.addEventListener("resize", () => {
    cancelAnimationFrame(resizing);
    resizing = requestAnimationFrame(() => {
      render();
      drawMemoryPlot();
    });
  });
}

function initThreadSelect() {
  const select = document.getElementById("thread-select");
  if (meta.merge_threads || model.threads.length <= 1) return;
  select.hidden = false;
  const all = new Option("All threads", "-1");
  select.add(all);
  model.threads.forEach((name, i) => select.add(new Option(name, String(i))));
  select.addEventListener("change", () => {
    state.thread = Number(select.value);
    rebuild();
  });
}

// ------------------------------------------------------------- memory plot

// Over several processes: each one's own heap, drawn under their sum.
const processLines = memory.processes || [];
const PROCESS_COLORS = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
const processColor = (i) => PROCESS_COLORS[i % PROCESS_COLORS.length];

// A process's heap at `time` as a tooltip line; nothing outside its life.
function processHeapAt(process, time) {
  const times = process.time;
  if (!times.length || time < times[0] || time > times[times.length - 1]) return "";
  let i = 0;
  while (i + 1 < times.length && times[i + 1] <= time) i++;
  return "<br>" + escapeHtml(process.name) + ": " + humanBytes(process.heap[i]);
}

// One legend entry per process line, and the sum's entries say so.
function initProcessLegend() {
  if (!processLines.length) return;
  const controls = document.querySelector(".memory-controls");
  const button = document.getElementById("jump-to-peak");
  for (const legend of controls.querySelectorAll(".legend")) legend.lastChild.textContent += " (all processes)";
  processLines.forEach((process, i) => {
    const legend = document.createElement("span");
    legend.className = "legend process";
    legend.title = process.name;
    // The name up to the command line ("pid 1234"); the tooltip has it all.
    legend.innerHTML = '<i class="swatch" style="background:' + processColor(i) + '"></i>' + escapeHtml(process.name.split(":")[0]);
    controls.insertBefore(legend, button);
  });
}

function heapPeakSample() {
  let best = 0;
  for (let i = 1; i < memory.heap.length; i++) if (memory.heap[i] > memory.heap[best]) best = i;
  return best;
}

// Time span covered by snapshot `k` (between samples k-1 and k).
function snapshotSpan(k) {
  const times = memory.time;
  const last = times.length - 1;
  const from = k === 0 ? times[0] : times[Math.min(k - 1, last)];
  const to = k > last ? times[last] : times[k];
  return [from, to];
}

function drawMemoryPlot() {
  const canvas = document.getElementById("memory-plot");
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const times = memory.time;
  if (times.length === 0) {
    ctx.fillStyle = "#59636e";
    ctx.fillText("No memory samples in this capture", 10, height / 2);
    return;
  }
  const box = { left: 72, right: width - 12, top: 8, bottom: height - 22 };
  const t0 = times[0];
  const t1 = Math.max(times[times.length - 1], t0 + 1);
  let top = 1;
  for (let i = 0; i < times.length; i++) top = Math.max(top, memory.rss[i], memory.heap[i]);
  for (const process of processLines) for (const heap of process.heap) top = Math.max(top, heap);
  top *= 1.08;
  const xOf = (t) => box.left + ((t - t0) / (t1 - t0)) * (box.right - box.left);
  plotGeometry = { box, t0, t1 };
  const yOf = (v) => box.bottom - (v / top) * (box.bottom - box.top);

  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeStyle = "#e5e9ee";
  ctx.fillStyle = "#59636e";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const value = (top / 1.08) * (i / 4);
    const y = yOf(value);
    ctx.beginPath();
    ctx.moveTo(box.left, y);
    ctx.lineTo(box.right, y);
    ctx.stroke();
    ctx.fillText(humanBytes(Math.round(value)), box.left - 6, y);
  }
  ctx.textBaseline = "top";
  for (let i = 0; i <= 6; i++) {
    const t = t0 + ((t1 - t0) * i) / 6;
    ctx.textAlign = i === 0 ? "left" : i === 6 ? "right" : "center";
    ctx.fillText(formatDuration(Math.round(t - t0)), xOf(t), box.bottom + 5);
  }

  if (temporal) {
    const [from] = snapshotSpan(state.windowStart);
    const [, to] = snapshotSpan(state.windowEnd);
    ctx.fillStyle = "rgba(9, 105, 218, 0.10)";
    ctx.fillRect(xOf(from), box.top, Math.max(2, xOf(to) - xOf(from)), box.bottom - box.top);
    if (state.peakSnapshot !== null) {
      const [a, b] = snapshotSpan(state.peakSnapshot);
      ctx.fillStyle = "rgba(240, 200, 0, 0.45)";
      ctx.fillRect(xOf(a), box.top, Math.max(3, xOf(b) - xOf(a)), box.bottom - box.top);
    }
  }

  drawnPlotLines = [];
  const line = (name, values, color, at = times) => {
    drawnPlotLines.push({ name, points: at.length, peak: Math.max(...values) });
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    for (let i = 0; i < at.length; i++) {
      const x = xOf(at[i]);
      const y = yOf(values[i]);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    }
    if (at.length === 1) ctx.lineTo(xOf(at[0]) + 2, yOf(values[0]));
    ctx.stroke();
  };
  line("rss", memory.rss, "#1f77b4");
  processLines.forEach((process, i) => line(process.name, process.heap, processColor(i), process.time));
  line("heap", memory.heap, "#ff7f0e");

  const peak = heapPeakSample();
  const px = xOf(times[peak]);
  const py = yOf(memory.heap[peak]);
  if (state.peakJumped) {
    ctx.strokeStyle = "#cf222e";
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(px, box.top);
    ctx.lineTo(px, box.bottom);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  ctx.fillStyle = "#cf222e";
  ctx.beginPath();
  ctx.arc(px, py, state.peakJumped ? 5 : 3.5, 0, 2 * Math.PI);
  ctx.fill();
}

// The time under a mouse event on the plot.
function plotTime(event) {
  const canvas = document.getElementById("memory-plot");
  const { box, t0, t1 } = plotGeometry;
  const x = event.clientX - canvas.getBoundingClientRect().left;
  const share = Math.min(1, Math.max(0, (x - box.left) / (box.right - box.left)));
  return t0 + share * (t1 - t0);
}

function nearestSample(time) {
  let best = 0;
  for (let i = 1; i < memory.time.length; i++) {
    if (Math.abs(memory.time[i] - time) < Math.abs(memory.time[best] - time)) best = i;
  }
  return best;
}

// Hovering reads the plot out; in the temporal view, dragging picks the
// window (snapshots as memray maps a time range to them).
function initPlotEvents() {
  const canvas = document.getElementById("memory-plot");
  const tooltip = document.getElementById("tooltip");
  let dragFrom = null;
  canvas.addEventListener("mousemove", (event) => {
    if (!plotGeometry || memory.time.length === 0) return;
    const i = nearestSample(plotTime(event));
    tooltip.innerHTML =
      "<b>" + formatDuration(memory.time[i] - memory.time[0]) + "</b> into the run<br>" +
      "Resident size: " + humanBytes(memory.rss[i]) + "<br>Heap size: " + humanBytes(memory.heap[i]) +
      processLines.map((process) => processHeapAt(process, memory.time[i])).join("");
    tooltip.hidden = false;
    tooltip.style.left = Math.min(event.clientX + 14, window.innerWidth - tooltip.offsetWidth - 4) + "px";
    tooltip.style.top = event.clientY + 14 + "px";
  });
  canvas.addEventListener("mouseleave", () => (tooltip.hidden = true));
  if (!temporal) return;
  canvas.style.cursor = "col-resize";
  canvas.addEventListener("mousedown", (event) => (dragFrom = plotTime(event)));
  canvas.addEventListener("mouseup", (event) => {
    if (dragFrom === null) return;
    const a = Math.min(dragFrom, plotTime(event));
    const b = Math.max(dragFrom, plotTime(event));
    dragFrom = null;
    const last = snapshotCount - 1;
    const start = memory.time.findIndex((t) => t >= a);
    const end = memory.time.findIndex((t) => t > b);
    setWindow(start < 0 ? last : start, end < 0 ? last : end);
  });
}

function jumpToPeak() {
  state.peakJumped = true;
  const info = document.getElementById("peak-info");
  if (temporal && temporal.hwm) {
    let best = 0;
    for (let k = 1; k < temporal.hwm.length; k++) if (temporal.hwm[k] > temporal.hwm[best]) best = k;
    setWindow(best, best);
  } else if (temporal) {
    setWindow(0, snapshotCount - 1);
  }
  const peak = heapPeakSample();
  if (memory.time.length) {
    info.textContent =
      "Heap peak " + humanBytes(memory.heap[peak]) + " at " +
      formatDuration(memory.time[peak] - memory.time[0]) + " into the run" +
      (meta.kind !== "peak" || temporal
        ? ""
        : processLines.length
          ? "; the flame graph shows each process at its own peak"
          : "; the flame graph shows memory at that moment");
    info.dataset.peakBytes = memory.heap[peak];
  } else {
    info.textContent = "Peak memory " + humanBytes(meta.peak_memory);
  }
  drawMemoryPlot();
  document.getElementById("memory-plot").scrollIntoView({ block: "nearest" });
}

// -------------------------------------------------------- temporal window

function setWindow(start, end) {
  state.windowStart = Math.max(0, Math.min(start, snapshotCount - 1));
  state.windowEnd = Math.max(state.windowStart, Math.min(end, snapshotCount - 1));
  document.getElementById("window-start").value = state.windowStart;
  document.getElementById("window-end").value = state.windowEnd;
  rebuild();
}

function updateWindowInfo() {
  if (!temporal) return;
  const info = document.getElementById("window-info");
  const [from] = snapshotSpan(state.windowStart);
  const [, to] = snapshotSpan(state.windowEnd);
  const t0 = memory.time.length ? memory.time[0] : 0;
  let text =
    "Snapshots " + state.windowStart + "–" + state.windowEnd + " (" +
    formatDuration(from - t0) + " – " + formatDuration(to - t0) + "): ";
  if (temporal.hwm) {
    const k = state.peakSnapshot;
    text += "peak " + humanBytes(temporal.hwm[k]) + " in snapshot " + k;
    info.dataset.peakBytes = temporal.hwm[k];
    info.dataset.peakSnapshot = k;
  } else {
    text += humanBytes(view.bytes[0]) + " allocated in the window and not freed by its end";
  }
  info.dataset.viewBytes = view.bytes[0];
  info.textContent = text;
}

function initTemporalControls() {
  if (!temporal) return;
  document.getElementById("temporal-controls").hidden = false;
  const start = document.getElementById("window-start");
  const end = document.getElementById("window-end");
  for (const slider of [start, end]) {
    slider.max = snapshotCount - 1;
  }
  let pending = null;
  const onInput = (moved) => {
    let s = Number(start.value);
    let e = Number(end.value);
    if (s > e) {
      if (moved === start) e = s;
      else s = e;
    }
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(() => setWindow(s, e));
  };
  start.addEventListener("input", () => onInput(start));
  end.addEventListener("input", () => onInput(end));
}

// ------------------------------------------------------------- shared view

// Applies the valid settings of the URL hash over the defaults.
function showSharedView() {
  const threads = meta.merge_threads || model.threads.length <= 1 ? 0 : model.threads.length;
  const shared = readViewHash(location.hash, { threads, snapshots: temporal ? snapshotCount : 0 });
  Object.assign(state, defaultView, shared);
  syncControls();
  rebuild();
  if (shared.zoom > 0 && shared.zoom < view.size) zoomTo(shared.zoom);
}

// Makes the toolbar and sliders show `state`.
function syncControls() {
  document.getElementById("search").value = state.search;
  document.getElementById("module-filter").value = state.module;
  document.getElementById("thread-select").value = String(state.thread);
  document.getElementById("hide-uninteresting").checked = state.hideUninteresting;
  document.getElementById("hide-import-system").checked = state.hideImportSystem;
  document.getElementById("invert").checked = state.inverted;
  document.getElementById(state.icicles ? "icicles" : "flames").checked = true;
  document.getElementById("window-start").value = state.windowStart;
  document.getElementById("window-end").value = state.windowEnd;
}

// -------------------------------------------------------------------- main

function main() {
  const extraFacts = [];
  if (!meta.merge_threads && model.threads.length > 1) extraFacts.push(["Threads", model.threads.length]);
  if (temporal) extraFacts.push(["View", "temporal"]);
  if (processLines.length) {
    extraFacts.push(["Processes", processLines.length + " (peak memory: the peak of their summed heap over time)"]);
  }
  renderHeader(meta, extraFacts);
  initProcessLegend();
  initTemporalControls();
  initFlameEvents();
  initPlotEvents();
  document.getElementById("jump-to-peak").onclick = jumpToPeak;
  showSharedView();
  window.addEventListener("hashchange", showSharedView);
  window.memrayPage = {
    loadMs: performance.now(),
    nodes: model.n,
    // For tests: where the first drawn frame called `name` is, in page coordinates.
    frameCenter(name) {
      const box = document.getElementById("flame").getBoundingClientRect();
      for (let r = 0; r < rects.node.length; r++) {
        if (frameLabel(rects.node[r]) === name && !rects.ancestor[r]) {
          return {
            x: box.left + rects.x[r] + rects.w[r] / 2,
            y: box.top + rowTop(rects.depth[r]) + ROW_HEIGHT / 2,
            width: rects.w[r],
          };
        }
      }
      return null;
    },
    // What the first drawn box of function `name` says.
    boxLabelOf(name) {
      const r = rects.node.findIndex((node, i) => frameLabel(node) === name && !rects.ancestor[i]);
      return r < 0 ? null : boxLabel(rects.node[r]);
    },
    zoomedFunction: () => frameLabel(state.zoom),
    // The lines the memory plot drew: name, points and highest value.
    plotLines: () => drawnPlotLines,
    drawnFunctions: () => rects.node.map(frameLabel),
    drawnAtDepth: (depth) => rects.node.filter((_, r) => rects.depth[r] === depth).map(frameLabel),
  };
  document.body.dataset.ready = "true";
}

main();

"use strict";
// Helpers shared by the flame graph and table pages.

function loadPayload() {
  return JSON.parse(document.getElementById("memray-data").textContent);
}

// memray's page sizes: 1000-based units, one decimal ("140.5 MB"), the
// units of `memray stats` and `summary` ("140.475MB").
function humanBytes(bytes) {
  if (Math.abs(bytes) < 1000) return bytes + " B";
  const units = ["kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1000;
    unit++;
  } while (Math.round(Math.abs(value) * 10) / 10 >= 1000 && unit < units.length - 1);
  return value.toFixed(1) + " " + units[unit];
}

function formatDuration(ms) {
  if (ms < 1000) return ms + " ms";
  const seconds = ms / 1000;
  if (seconds < 60) return seconds.toFixed(2) + " s";
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return minutes + " min " + Math.round(seconds - minutes * 60) + " s";
  const hours = Math.floor(minutes / 60);
  return hours + " h " + (minutes - hours * 60) + " min";
}

function formatPercent(part, whole) {
  if (!whole) return "0%";
  const share = (100 * part) / whole;
  return (share >= 10 ? share.toFixed(1) : share.toPrecision(2)) + "%";
}

function formatCount(n) {
  return Number(n).toLocaleString("en-US");
}

// Calls `apply(value)` once typing in the input `id` has paused for `delayMs`,
// so that a big report is not filtered again on every keystroke.
function onSettledInput(id, delayMs, apply) {
  const input = document.getElementById(id);
  let pending = null;
  input.addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(() => apply(input.value), delayMs);
  });
}

function escapeHtml(text) {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

const REPORT_KIND_LABELS = {
  peak: "memory at the peak (high-water mark)",
  leaks: "memory leaked (not freed when tracking stopped)",
  temporary: "temporary allocations",
};

// Fills the shared header: title, command line and facts about the capture.
function renderHeader(meta, extraFacts) {
  document.getElementById("capture-name").textContent = meta.capture_name;
  document.getElementById("command-line").textContent = meta.command_line;
  const facts = [
    ["Shows", REPORT_KIND_LABELS[meta.kind] || meta.kind],
    ["Peak memory", humanBytes(meta.peak_memory)],
    ["Total allocations", formatCount(meta.total_allocations)],
    ["Duration", formatDuration(Math.max(0, meta.end_time_ms - meta.start_time_ms))],
    ["Started", new Date(meta.start_time_ms).toISOString().replace("T", " ").replace("Z", " UTC")],
    ["PID", meta.pid === null ? "unknown" : meta.pid],
    ["Python allocator", meta.python_allocator],
    ["Native traces", meta.has_native_traces ? "yes" : "no"],
    ["Python allocators traced", meta.trace_python_allocators ? "yes" : "no"],
  ].concat(extraFacts || []);
  const container = document.getElementById("facts");
  for (const [name, value] of facts) {
    const span = document.createElement("span");
    span.innerHTML = "<b>" + escapeHtml(name) + ":</b> " + escapeHtml(value);
    span.dataset.fact = name;
    container.appendChild(span);
  }
}

// Drives HTML reports (memray-html's `sample_pages`, or pages of a real
// capture) through headless Chromium (the system's, via playwright-core) and checks
// what a user would see and do.
//
//   node run.js PAGES_DIR SCREENSHOT_DIR
//
// PAGES_DIR holds the pages and expectations.json; a suite runs when the
// expectations have its key. Prints one JSON line of
// measurements; exits non-zero listing every failed check.

"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const { chromium } = require("playwright-core");

const [pagesDir, shotsDir] = process.argv.slice(2);
if (!pagesDir || !shotsDir) {
  console.error("usage: node run.js PAGES_DIR SCREENSHOT_DIR");
  process.exit(2);
}
const expect = JSON.parse(fs.readFileSync(path.join(pagesDir, "expectations.json"), "utf8"));
fs.mkdirSync(shotsDir, { recursive: true });

const failures = [];
const measurements = {};

function check(condition, message) {
  if (!condition) failures.push(message);
}

function checkEqual(actual, expected, message) {
  check(actual === expected, `${message}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
}

function chromiumPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    try {
      return execFileSync("which", [name], { encoding: "utf8" }).trim();
    } catch (_) {
      // not this one
    }
  }
  throw new Error("no chromium on PATH (apt-get install chromium)");
}

// Opens `file` (with the URL hash `hash`) and records console errors and
// every request that is not the page itself.
async function openPage(context, file, hash = "") {
  const page = await context.newPage();
  const url = "file://" + path.resolve(pagesDir, file);
  const problems = { console: [], requests: [] };
  page.on("console", (message) => {
    if (message.type() === "error") problems.console.push(message.text());
  });
  page.on("pageerror", (error) => problems.console.push(String(error)));
  page.on("request", (request) => {
    if (request.url() !== url && !request.url().startsWith("data:")) problems.requests.push(request.url());
  });
  // A script error means the page never gets ready: report it at once.
  const failed = new Promise((_, reject) => page.once("pageerror", reject));
  const started = Date.now();
  await Promise.race([page.goto(url + hash, { waitUntil: "load", timeout: 60000 }), failed]);
  await Promise.race([page.waitForSelector("body[data-ready=true]", { timeout: 60000 }), failed]);
  const wallMs = Date.now() - started;
  return { page, problems, wallMs };
}

function checkClean(name, problems) {
  checkEqual(problems.console.length, 0, `${name}: console errors ${problems.console.join(" | ")}`);
  checkEqual(problems.requests.length, 0, `${name}: network requests ${problems.requests.join(" ")}`);
}

const viewTotal = (page) => page.$eval("#view-total", (e) => Number(e.dataset.totalBytes));
const zoomBytes = (page) => page.$eval("#view-total", (e) => Number(e.dataset.zoomBytes));
const drawn = (page) => page.evaluate(() => window.memrayPage.drawnFunctions());

async function clickFrame(page, name) {
  const center = await page.evaluate((n) => window.memrayPage.frameCenter(n), name);
  if (!center) throw new Error(`frame ${name} is not drawn`);
  await page.mouse.click(center.x, center.y);
  return center;
}

async function pixelAt(page, center) {
  return page.evaluate(({ x, y }) => {
    const canvas = document.getElementById("flame");
    const box = canvas.getBoundingClientRect();
    const ratio = canvas.width / box.width;
    const data = canvas.getContext("2d").getImageData((x - box.left) * ratio, (y - box.top) * ratio, 1, 1).data;
    return [data[0], data[1], data[2]];
  }, center);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shotsDir, name + ".png"), fullPage: true });
}

async function flamegraphChecks(context) {
  const e = expect.flamegraph;
  const { page, problems } = await openPage(context, "flamegraph.html");
  checkEqual(await viewTotal(page), e.total_bytes, "flamegraph total");
  const duration = await page.$eval('[data-fact="Duration"]', (el) => el.textContent);
  check(duration.includes(e.duration_text), `duration shown: ${duration}`);
  check(!(await drawn(page)).includes(e.uninteresting_function), "uninteresting frames hidden by default");
  await shot(page, "flamegraph-initial");

  // Tooltip with bytes, share, count, location and the source line.
  const target = await page.evaluate((n) => window.memrayPage.frameCenter(n), e.zoom.function);
  await page.mouse.move(target.x, target.y);
  const tooltip = await page.$eval("#tooltip", (el) => (el.hidden ? "" : el.textContent));
  check(tooltip.includes("app.py:25"), `tooltip location: ${tooltip}`);
  check(tooltip.includes(e.source_line.trim()), `tooltip source line: ${tooltip}`);
  check(/allocations/.test(tooltip) && /% of the total/.test(tooltip), `tooltip figures: ${tooltip}`);
  await shot(page, "flamegraph-tooltip");

  // Click to zoom, then reset.
  await clickFrame(page, e.zoom.function);
  checkEqual(await page.evaluate(() => window.memrayPage.zoomedFunction()), e.zoom.function, "zoomed frame");
  checkEqual(await zoomBytes(page), e.zoom.bytes, "zoomed bytes");
  const zoomedWidth = (await page.evaluate((n) => window.memrayPage.frameCenter(n), "transform")).width;
  const fullWidth = await page.$eval("#flame", (el) => el.getBoundingClientRect().width);
  check(Math.abs(zoomedWidth - fullWidth) < 2, `zoomed child fills the width: ${zoomedWidth} of ${fullWidth}`);
  check((await page.textContent("#breadcrumb")).endsWith(e.zoom.function), "breadcrumb shows the zoom");
  await shot(page, "flamegraph-zoomed");
  await page.click("#reset-zoom");
  checkEqual(await zoomBytes(page), e.total_bytes, "reset zoom");

  // Search highlights matches and reports their share.
  await page.fill("#search", e.search.term);
  const matched = await page.$eval("#search-info", (el) => Number(el.dataset.matchedBytes));
  checkEqual(matched, e.search.bytes, "search matched bytes");
  const loads = await page.evaluate(() => window.memrayPage.frameCenter("loads"));
  const [r, g, b] = await pixelAt(page, { x: loads.x, y: loads.y - 5 });
  check(r > 240 && g > 120 && g < 160 && b < 60, `matched frame drawn orange, got rgb(${r},${g},${b})`);
  await shot(page, "flamegraph-search");
  await page.fill("#search", "");

  // Threads.
  for (const [index, thread] of e.thread_bytes.entries()) {
    await page.selectOption("#thread-select", String(index));
    checkEqual(await viewTotal(page), thread.bytes, `total of ${thread.name}`);
  }
  check(!(await drawn(page)).includes("main"), "main thread frames gone in a worker's view");
  await shot(page, "flamegraph-thread");
  await page.selectOption("#thread-select", "-1");
  checkEqual(await viewTotal(page), e.total_bytes, "all threads again");

  // Import system hiding keeps the total and lifts the frames below.
  check((await drawn(page)).includes(e.import_system_function), "import frames shown by default");
  await page.check("#hide-import-system");
  const withoutImports = await drawn(page);
  check(!withoutImports.includes(e.import_system_function), "import frames hidden");
  check(withoutImports.includes("build_table"), "frames under the import system stay");
  checkEqual(await viewTotal(page), e.total_bytes, "total without import frames");
  await page.uncheck("#hide-import-system");
  await page.uncheck("#hide-uninteresting");
  check((await drawn(page)).includes(e.uninteresting_function), "uninteresting frames shown on request");
  await page.check("#hide-uninteresting");

  // Module filter.
  await page.fill("#module-filter", e.module.term);
  await page.waitForFunction((bytes) => Number(document.getElementById("view-total").dataset.totalBytes) === bytes, e.module.bytes, { timeout: 5000 }).catch(() => {});
  checkEqual(await viewTotal(page), e.module.bytes, "module filter total");
  await page.fill("#module-filter", "");
  await page.waitForFunction((bytes) => Number(document.getElementById("view-total").dataset.totalBytes) === bytes, e.total_bytes, { timeout: 5000 }).catch(() => {});

  // Inverted view: the allocating frames sit right under the root.
  await page.check("#invert");
  checkEqual(await viewTotal(page), e.total_bytes, "inverted total");
  const bases = new Set(await page.evaluate(() => window.memrayPage.drawnAtDepth(1)));
  checkEqual([...bases].sort().join(), [...e.inverted_roots].sort().join(), "inverted view's base frames");
  await page.check("#flames");
  await shot(page, "flamegraph-inverted-flames");
  await page.uncheck("#invert");
  await page.check("#icicles");

  // Jump to peak.
  await page.click("#jump-to-peak");
  const peakInfo = await page.textContent("#peak-info");
  check(peakInfo.startsWith("Heap peak"), `peak info: ${peakInfo}`);
  await shot(page, "flamegraph-peak");
  checkClean("flamegraph", problems);
  await page.close();
}

// Moves the temporal window's sliders with the keyboard, as a user would.
async function moveWindow(page, snapshots, [start, end]) {
  await page.focus("#window-end");
  for (let i = snapshots - 1; i > end; i--) await page.keyboard.press("ArrowLeft");
  await page.focus("#window-start");
  for (let i = 0; i < start; i++) await page.keyboard.press("ArrowRight");
  await page
    .waitForFunction(
      (prefix) => document.getElementById("window-info").textContent.startsWith(prefix),
      `Snapshots ${start}–${end} `,
      { timeout: 5000 }
    )
    .catch(() => {});
}

async function temporalLeaksChecks(context) {
  const e = expect.temporal;
  const { page, problems } = await openPage(context, "temporal_leaks.html");
  check(await page.isVisible("#pymalloc-warning"), "temporal leaks: pymalloc warning shown");
  await moveWindow(page, e.snapshots, e.window);
  const viewBytes = await page.$eval("#window-info", (el) => Number(el.dataset.viewBytes));
  checkEqual(viewBytes, e.leaks_window_bytes, "temporal leaks: leaked in the window");
  checkEqual(await viewTotal(page), e.leaks_window_bytes, "temporal leaks: graph total");
  await shot(page, "temporal-leaks-window");
  checkClean("temporal leaks", problems);
  await page.close();
}

async function temporalChecks(context) {
  const e = expect.temporal;
  const { page, problems } = await openPage(context, "temporal.html");
  const info = () => page.$eval("#window-info", (el) => ({ ...el.dataset }));
  let now = await info();
  checkEqual(Number(now.peakBytes), e.full_peak_bytes, "temporal: peak of the whole run");
  checkEqual(Number(now.viewBytes), e.full_peak_bytes, "temporal: graph total at the peak");
  await moveWindow(page, e.snapshots, e.window);
  now = await info();
  checkEqual(Number(now.peakSnapshot), e.window_peak_snapshot, "temporal: peak snapshot in the window");
  checkEqual(Number(now.peakBytes), e.window_peak_bytes, "temporal: peak in the window");
  checkEqual(Number(now.viewBytes), e.window_peak_bytes, "temporal: graph total in the window");
  checkEqual(await viewTotal(page), e.window_peak_bytes, "temporal: status total in the window");
  await shot(page, "temporal-window");
  // Dragging across the whole plot selects the whole run again.
  const plot = await page.$eval("#memory-plot", (el) => {
    const box = el.getBoundingClientRect();
    return { left: box.left, right: box.right, y: box.top + box.height / 2 };
  });
  await page.mouse.move(plot.left + 80, plot.y);
  const readout = await page.$eval("#tooltip", (el) => (el.hidden ? "" : el.textContent));
  check(readout.includes("Heap size") && readout.includes("Resident size"), `plot readout: ${readout}`);
  await page.mouse.down();
  await page.mouse.move(plot.right - 2, plot.y, { steps: 5 });
  await page.mouse.up();
  now = await info();
  checkEqual(Number(now.peakSnapshot), e.full_peak_snapshot, "temporal: dragged window's peak snapshot");
  checkEqual(Number(now.viewBytes), e.full_peak_bytes, "temporal: dragged window's total");
  await page.click("#jump-to-peak");
  now = await info();
  checkEqual(Number(now.peakSnapshot), e.full_peak_snapshot, "temporal: jump to peak snapshot");
  checkEqual(Number(now.viewBytes), e.full_peak_bytes, "temporal: graph total after jumping to the peak");
  await shot(page, "temporal-peak");
  checkClean("temporal", problems);
  await page.close();
}

// What a flame graph page shows: its controls, zoom, figures and the picture.
function shownView(page) {
  return page.evaluate(() => {
    const $ = (id) => document.getElementById(id);
    return {
      zoomed: window.memrayPage.zoomedFunction(),
      totalBytes: $("view-total").dataset.totalBytes,
      zoomBytes: $("view-total").dataset.zoomBytes,
      matched: $("search-info").textContent,
      drawn: window.memrayPage.drawnFunctions().join("|"),
      search: $("search").value,
      module: $("module-filter").value,
      thread: $("thread-select").value,
      hideUninteresting: $("hide-uninteresting").checked,
      hideImportSystem: $("hide-import-system").checked,
      inverted: $("invert").checked,
      flames: $("flames").checked,
      windowStart: $("window-start").value,
      windowEnd: $("window-end").value,
      window: $("window-info").textContent,
      // A digest of the canvas: the same picture, without megabytes of text in a failure.
      picture: [...$("flame").toDataURL()].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) | 0, 0),
    };
  });
}

// Opens `file` again with `page`'s URL hash: the new page must show the same view.
async function checkSharedView(context, file, page, name) {
  const hash = await page.evaluate(() => location.hash);
  const before = await shownView(page);
  const shared = await openPage(context, file, hash);
  const after = await shownView(shared.page);
  for (const key of Object.keys(before)) {
    checkEqual(after[key], before[key], `${name}: ${key} restored from ${hash}`);
  }
  checkEqual(await shared.page.evaluate(() => location.hash), hash, `${name}: hash kept`);
  checkClean(name, shared.problems);
  return { ...shared, hash };
}

// Clicks the first frame drawn at `depth` and returns its name.
async function zoomAtDepth(page, depth) {
  const [name] = await page.evaluate((d) => window.memrayPage.drawnAtDepth(d), depth);
  await clickFrame(page, name);
  return name;
}

async function sharedViewChecks(context) {
  const e = expect.flamegraph;
  const first = await openPage(context, "flamegraph.html");
  const page = first.page;
  const defaults = await shownView(page);
  checkEqual(await page.evaluate(() => location.hash), "", "shared view: the default view has no hash");
  await page.selectOption("#thread-select", "1");
  await page.uncheck("#hide-uninteresting");
  await page.check("#hide-import-system");
  await page.check("#flames");
  await page.fill("#search", e.search.term);
  const zoomed = await zoomAtDepth(page, 2);
  const hash = await page.evaluate(() => location.hash);
  for (const part of ["thread=1", "uninteresting=show", "imports=hide", "direction=flames", "search=" + e.search.term, "zoom="]) {
    check(hash.includes(part), `shared view: ${part} in ${hash}`);
  }
  checkEqual((await shownView(page)).zoomed, zoomed, "shared view: zoomed by the click");
  const threadView = await checkSharedView(context, "flamegraph.html", page, "shared thread view");
  await shot(threadView.page, "shared-thread-view");

  // From the restored page on: module filter, inverted, another zoom.
  const again = threadView.page;
  await again.selectOption("#thread-select", "-1");
  await again.fill("#module-filter", e.module.term);
  await again.waitForFunction((term) => location.hash.includes("module=" + term), e.module.term, { timeout: 5000 }).catch(() => {});
  await again.check("#invert");
  await zoomAtDepth(again, 1);
  checkEqual(Number((await shownView(again)).totalBytes), e.module.bytes, "shared view: module total");
  const inverted = await checkSharedView(context, "flamegraph.html", again, "shared inverted module view");
  await shot(inverted.page, "shared-inverted-module-view");
  await Promise.all([page, again, inverted.page].map((p) => p.close()));

  // memray's own form: the bare node id.
  const plain = await openPage(context, "flamegraph.html");
  await zoomAtDepth(plain.page, 1);
  const zoomHash = await plain.page.evaluate(() => location.hash);
  check(/^#zoom=\d+$/.test(zoomHash), `shared view: only the zoom differs: ${zoomHash}`);
  const bare = await openPage(context, "flamegraph.html", "#" + zoomHash.slice("#zoom=".length));
  checkEqual((await shownView(bare.page)).drawn, (await shownView(plain.page)).drawn, "shared view: bare node id zooms");
  checkClean("bare node id", bare.problems);
  await Promise.all([plain.page.close(), bare.page.close()]);

  // Garbage and stale settings are ignored, field by field.
  const garbage = await openPage(context, "flamegraph.html", "#zoom=99999999&thread=42&uninteresting=maybe&window=3-1&inverted=2&%E0%A4%A&&==");
  const shown = await shownView(garbage.page);
  for (const key of Object.keys(defaults)) checkEqual(shown[key], defaults[key], `garbage hash: default ${key}`);
  checkEqual(await garbage.page.evaluate(() => location.hash), "", "garbage hash: replaced by the default view's");

  // Editing the hash of an open page shows the view it names.
  await garbage.page.evaluate((term) => (location.hash = "thread=2&search=" + term), e.search.term);
  await garbage.page.waitForFunction(() => document.getElementById("thread-select").value === "2", null, { timeout: 5000 }).catch(() => {});
  const edited = await shownView(garbage.page);
  checkEqual(edited.thread, "2", "edited hash: thread");
  checkEqual(Number(edited.totalBytes), e.thread_bytes[2].bytes, "edited hash: thread total");
  checkEqual(edited.search, e.search.term, "edited hash: search");
  checkClean("garbage hash", garbage.problems);
  checkClean("shared view", first.problems);
  await garbage.page.close();
}

// A temporal page's window and zoom survive a reload with the hash.
async function sharedWindowCheck(context, file, snapshots, window) {
  const { page, problems } = await openPage(context, file);
  await moveWindow(page, snapshots, window);
  await zoomAtDepth(page, 1);
  const hash = await page.evaluate(() => location.hash);
  check(hash.includes(`window=${window[0]}-${window[1]}`), `${file}: window in ${hash}`);
  const shared = await checkSharedView(context, file, page, `shared ${file}`);
  await shot(shared.page, "shared-" + path.basename(file, ".html"));
  checkClean(file, problems);
  await Promise.all([page.close(), shared.page.close()]);
}

async function sharedTemporalChecks(context) {
  await sharedWindowCheck(context, "temporal.html", expect.temporal.snapshots, expect.temporal.window);
}

async function sharedCaptureChecks(context) {
  const e = expect.capture.temporal;
  await sharedWindowCheck(context, "capture_temporal.html", e.snapshots, e.window);
}

async function tableChecks(context) {
  const e = expect.table;
  const { page, problems } = await openPage(context, "table.html");
  const summary = () => page.$eval("#summary", (el) => ({ rows: Number(el.dataset.visibleRows), bytes: Number(el.dataset.visibleBytes) }));
  const column = (index) =>
    page.$$eval(`#rows tr td:nth-child(${index})`, (cells) => cells.map((c) => Number(c.dataset.value)));
  checkEqual((await summary()).rows, e.rows, "table rows");
  const sizes = await column(2);
  checkEqual(sizes[0], e.max_size, "sorted by size, largest first");
  check(sizes.every((v, i) => i === 0 || sizes[i - 1] >= v), "sizes descending");
  await page.click('th[data-column="size"]');
  const ascending = await column(2);
  checkEqual(ascending[0], e.min_size, "sorted by size, smallest first");
  check(ascending.every((v, i) => i === 0 || ascending[i - 1] <= v), "sizes ascending");
  await page.click('th[data-column="count"]');
  checkEqual((await column(4))[0], e.max_count, "sorted by allocations");
  await page.click("#next-page");
  check((await page.textContent("#page-info")).startsWith("Page 2 of"), "next page");
  await page.fill("#filter", e.filter.term);
  await page.waitForFunction((rows) => Number(document.getElementById("summary").dataset.visibleRows) === rows, e.filter.rows, { timeout: 5000 }).catch(() => {});
  const filtered = await summary();
  checkEqual(filtered.rows, e.filter.rows, "filtered rows");
  checkEqual(filtered.bytes, e.filter.bytes, "filtered bytes");
  const locations = await page.$$eval("#rows tr td.location summary", (cells) => cells.map((c) => c.textContent));
  check(locations.length > 0 && locations.every((l) => l.includes(e.filter.term)), "only matching rows shown");
  await shot(page, "table-filtered");
  checkClean("table", problems);
  await page.close();
}

async function bigChecks(context) {
  const file = path.join(pagesDir, "big.html");
  if (!fs.existsSync(file)) return;
  const { page, problems, wallMs } = await openPage(context, "big.html");
  const loadMs = await page.evaluate(() => window.memrayPage.loadMs);
  checkEqual(await viewTotal(page), expect.big.total_bytes, "big: total");
  await shot(page, "big-initial");
  let started = Date.now();
  await page.fill("#search", "function_12");
  const searchMs = Date.now() - started;
  started = Date.now();
  await page.check("#invert");
  const invertMs = Date.now() - started;
  checkEqual(await viewTotal(page), expect.big.total_bytes, "big: inverted total");
  await shot(page, "big-inverted");
  measurements.big = {
    html_bytes: fs.statSync(file).size,
    model_nodes: expect.big.model_nodes,
    page_nodes: await page.evaluate(() => window.memrayPage.nodes),
    load_ms: Math.round(loadMs),
    wall_ms_to_ready: wallMs,
    search_ms: searchMs,
    invert_ms: invertMs,
  };
  checkClean("big", problems);
  await page.close();
}

// Pages of a real capture (memray flamegraph on a two-thread program) with
// figures taken from memray 1.20's own pages of the same capture.
async function captureChecks(context) {
  const e = expect.capture;
  const merged = await openPage(context, "capture_flamegraph.html");
  let page = merged.page;
  checkEqual(await viewTotal(page), e.peak_bytes, "capture: total shown is the peak");
  await shot(page, "capture-initial");
  await clickFrame(page, e.zoom.function);
  checkEqual(await page.evaluate(() => window.memrayPage.zoomedFunction()), e.zoom.function, "capture: zoomed frame");
  checkEqual(await zoomBytes(page), e.zoom.bytes, "capture: zoomed bytes");
  await shot(page, "capture-zoomed");
  await page.click("#reset-zoom");
  checkEqual(await zoomBytes(page), e.peak_bytes, "capture: reset zoom");
  await page.fill("#search", e.search.term);
  checkEqual(await page.$eval("#search-info", (el) => Number(el.dataset.matchedBytes)), e.search.bytes, "capture: search");
  await shot(page, "capture-search");
  checkClean("capture flame graph", merged.problems);
  await page.close();

  const split = await openPage(context, "capture_split.html");
  page = split.page;
  for (const thread of e.threads) {
    await page.selectOption("#thread-select", String(thread.index));
    checkEqual(await viewTotal(page), thread.bytes, `capture: total of ${thread.name}`);
    await shot(page, `capture-thread-${thread.index}`);
  }
  await page.selectOption("#thread-select", "-1");
  checkEqual(await viewTotal(page), e.peak_bytes, "capture: all threads");
  checkClean("capture split threads", split.problems);
  await page.close();

  const temporal = await openPage(context, "capture_temporal.html");
  page = temporal.page;
  const info = () => page.$eval("#window-info", (el) => ({ ...el.dataset }));
  let now = await info();
  checkEqual(Number(now.peakBytes), e.temporal.full_peak_bytes, "capture temporal: peak of the run");
  checkEqual(Number(now.viewBytes), e.temporal.full_peak_bytes, "capture temporal: graph total at the peak");
  await shot(page, "capture-temporal");
  await moveWindow(page, e.temporal.snapshots, e.temporal.window);
  now = await info();
  checkEqual(Number(now.peakSnapshot), e.temporal.window_peak_snapshot, "capture temporal: window's peak snapshot");
  checkEqual(Number(now.peakBytes), e.temporal.window_peak_bytes, "capture temporal: window's peak");
  checkEqual(Number(now.viewBytes), e.temporal.window_peak_bytes, "capture temporal: graph total in the window");
  await shot(page, "capture-temporal-window");
  checkClean("capture temporal", temporal.problems);
  await page.close();
}

// Box labels of a real capture, as memray labels them (the source line
// that ran, or "function at file:line"), and the header's peak in memray's units.
async function labelChecks(context) {
  const e = expect.labels;
  for (const want of e.pages) {
    const { page, problems } = await openPage(context, want.file);
    const peak = await page.$eval('[data-fact="Peak memory"]', (el) => el.textContent);
    checkEqual(peak, "Peak memory: " + e.peak_text, `${want.file}: peak in the header`);
    const label = await page.evaluate((n) => window.memrayPage.boxLabelOf(n), want.function);
    checkEqual(label, want.label, `${want.file}: the box of ${want.function}`);
    await shot(page, want.file.replace(".html", "-labels"));
    checkClean(want.file, problems);
    await page.close();
  }
}

// A flame graph over several processes' captures: one root per process
// (pid and command line), each holding that process's own peak, and the
// memory plot's lines: the sum (peaking at the peak of the sum) and one
// per process.
async function processesChecks(context) {
  const e = expect.processes;
  const { page, problems } = await openPage(context, e.file);
  const roots = await page.evaluate(() => window.memrayPage.drawnAtDepth(1));
  const names = e.processes.map((p) => p.name);
  checkEqual(JSON.stringify([...roots].sort()), JSON.stringify([...names].sort()), "processes: one root per process");
  checkEqual(await viewTotal(page), e.sum_of_peaks, "processes: the graph holds each process at its own peak");
  for (const process of e.processes) {
    await clickFrame(page, process.name);
    checkEqual(await zoomBytes(page), process.peak_bytes, `processes: ${process.name}'s own peak`);
    await page.click("#reset-zoom");
  }
  const lines = await page.evaluate(() => window.memrayPage.plotLines());
  checkEqual(JSON.stringify(lines.map((l) => l.name)), JSON.stringify(["rss"].concat(e.processes.map((p) => p.name), ["heap"])), "processes: plot lines");
  for (const line of lines) check(line.points > 0, `processes: the line of ${line.name} has points`);
  checkEqual(lines[lines.length - 1].peak, e.peak_of_sum, "processes: the sum's line peaks at the peak of the sum");
  const legends = await page.$$eval(".memory-controls .legend.process", (els) => els.map((el) => el.title));
  checkEqual(JSON.stringify(legends), JSON.stringify(e.processes.map((p) => p.name)), "processes: a legend per process");
  await page.click("#jump-to-peak");
  checkEqual(await page.$eval("#peak-info", (el) => Number(el.dataset.peakBytes)), e.peak_of_sum, "processes: jump to the peak of the sum");
  const fact = await page.$eval('[data-fact="Processes"]', (el) => el.textContent);
  check(fact.startsWith("Processes: " + e.processes.length + " "), `processes: header fact ${fact}`);
  await shot(page, "processes");
  checkClean("processes flame graph", problems);
  await page.close();
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "memray-html-profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
    ],
  });
  try {
    const suites = [
      ["flamegraph", flamegraphChecks],
      ["temporal", temporalChecks],
      ["temporal", temporalLeaksChecks],
      ["flamegraph", sharedViewChecks],
      ["temporal", sharedTemporalChecks],
      ["table", tableChecks],
      ["big", bigChecks],
      ["capture", captureChecks],
      ["capture", sharedCaptureChecks],
      ["labels", labelChecks],
      ["processes", processesChecks],
    ];
    // Each suite runs when PAGES_DIR has expectations for it.
    for (const [key, suite] of suites) {
      if (!expect[key]) continue;
      try {
        await suite(context);
      } catch (error) {
        failures.push(`${suite.name}: ${error.stack || error}`);
      }
    }
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ measurements, failures: failures.length }));
  if (failures.length) {
    for (const failure of failures) console.error("FAIL: " + failure);
    // Not process.exit: it would cut off a long report written to a pipe.
    process.exitCode = 1;
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

// The flame graph's view state in the URL hash ("#zoom=12&search=json&…"),
// so that a view can be shared or reloaded. Only settings that differ from
// the page's defaults are written. Reading keeps only well-formed, in-range
// values, so a stale or garbage hash falls back to the defaults field by
// field. memray's own form, a bare node id ("#12"), is read as a zoom.

// The hash (without "#") for `view`: { zoom, search, thread,
// hideUninteresting, hideImportSystem, module, inverted, icicles,
// windowStart, windowEnd }.
function writeViewHash(view, defaults) {
  const params = new URLSearchParams();
  const put = (key, name, text) => {
    if (view[name] !== defaults[name]) params.set(key, text(view[name]));
  };
  const flag = (on) => (on ? "1" : "0");
  put("zoom", "zoom", String);
  put("search", "search", String);
  put("thread", "thread", String);
  put("uninteresting", "hideUninteresting", (hide) => (hide ? "hide" : "show"));
  put("imports", "hideImportSystem", (hide) => (hide ? "hide" : "show"));
  put("module", "module", String);
  put("inverted", "inverted", flag);
  put("direction", "icicles", (icicles) => (icicles ? "icicles" : "flames"));
  if (view.windowStart !== defaults.windowStart || view.windowEnd !== defaults.windowEnd) {
    params.set("window", view.windowStart + "-" + view.windowEnd);
  }
  return params.toString();
}

// The settings that `hash` holds validly, as a partial view. `limits` says
// what exists on this page: { threads (0: no thread choice), snapshots (0:
// not temporal) }. The zoom is checked against the view tree by the caller.
function readViewHash(hash, limits) {
  const text = hash.replace(/^#/, "");
  if (/^\d+$/.test(text)) return { zoom: Number(text) };
  const params = new URLSearchParams(text);
  const view = {};
  const integer = (key, min, max) => {
    const value = params.get(key);
    if (value === null || !/^-?\d+$/.test(value)) return undefined;
    const n = Number(value);
    return n >= min && n <= max ? n : undefined;
  };
  const choice = (key, whenTrue, whenFalse) => {
    const value = params.get(key);
    return value === whenTrue ? true : value === whenFalse ? false : undefined;
  };
  const set = (name, value) => {
    if (value !== undefined) view[name] = value;
  };
  set("zoom", integer("zoom", 0, Number.MAX_SAFE_INTEGER));
  set("search", params.get("search") ?? undefined);
  if (limits.threads > 0) set("thread", integer("thread", -1, limits.threads - 1));
  set("hideUninteresting", choice("uninteresting", "hide", "show"));
  set("hideImportSystem", choice("imports", "hide", "show"));
  set("module", params.get("module") ?? undefined);
  set("inverted", choice("inverted", "1", "0"));
  set("icicles", choice("direction", "icicles", "flames"));
  const range = /^(\d+)-(\d+)$/.exec(params.get("window") || "");
  if (limits.snapshots > 0 && range) {
    const [start, end] = [Number(range[1]), Number(range[2])];
    if (start <= end && end < limits.snapshots) Object.assign(view, { windowStart: start, windowEnd: end });
  }
  return view;
}

// Replaces the page's URL hash without reloading or adding a history entry.
function replaceHash(text) {
  const url = location.href.split("#")[0] + (text ? "#" + text : "");
  if (url !== location.href) history.replaceState(history.state, "", url);
}

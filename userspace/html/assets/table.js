// The table page: rows live in parallel arrays; sorting and filtering work on
// an index array and only one page of rows is ever in the DOM.

const PAGE_SIZE = 100;

const payload = loadPayload();
const meta = payload.meta;
const strings = payload.strings;
const rowCount = payload.size.length;

const COLUMNS = [
  { key: "process", title: "Process", text: (i) => strings[payload.process[i]], hidden: !payload.process },
  { key: "thread", title: "Thread", text: (i) => strings[payload.thread[i]], hidden: meta.merge_threads },
  { key: "size", title: "Size", value: (i) => payload.size[i], text: (i) => humanBytes(payload.size[i]), number: true },
  { key: "allocator", title: "Allocator", text: (i) => strings[payload.allocator[i]] },
  { key: "count", title: "Allocations", value: (i) => payload.count[i], text: (i) => formatCount(payload.count[i]), number: true },
  { key: "location", title: "Location", text: (i) => strings[payload.location[i]] },
].filter((column) => !column.hidden);

const state = { sortColumn: "size", descending: true, filter: "", page: 0, visible: [] };

// Everything a row can be found by, lower-cased once.
const searchText = Array.from({ length: rowCount }, (_, i) =>
  COLUMNS.map((column) => column.text(i))
    .concat(payload.stack[i].map((s) => strings[s]))
    .join("\u0000")
    .toLowerCase()
);

function sortKey(column) {
  return column.value || column.text;
}

function refresh() {
  const term = state.filter.trim().toLowerCase();
  const visible = [];
  for (let i = 0; i < rowCount; i++) if (!term || searchText[i].includes(term)) visible.push(i);
  const column = COLUMNS.find((c) => c.key === state.sortColumn);
  const key = sortKey(column);
  const direction = state.descending ? -1 : 1;
  visible.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    return (x < y ? -1 : x > y ? 1 : a - b) * direction;
  });
  state.visible = visible;
  state.page = Math.min(state.page, Math.max(0, Math.ceil(visible.length / PAGE_SIZE) - 1));
  renderPage();
}

function renderHeaderRow() {
  const row = document.getElementById("header-row");
  row.innerHTML = "";
  for (const column of COLUMNS) {
    const th = document.createElement("th");
    th.dataset.column = column.key;
    const arrow = column.key === state.sortColumn ? (state.descending ? "▼" : "▲") : "";
    th.innerHTML = escapeHtml(column.title) + ' <span class="arrow">' + arrow + "</span>";
    th.onclick = () => {
      if (state.sortColumn === column.key) state.descending = !state.descending;
      else {
        state.sortColumn = column.key;
        state.descending = Boolean(column.number);
      }
      renderHeaderRow();
      refresh();
    };
    row.appendChild(th);
  }
}

function renderPage() {
  const body = document.getElementById("rows");
  const from = state.page * PAGE_SIZE;
  const shown = state.visible.slice(from, from + PAGE_SIZE);
  const html = [];
  for (const i of shown) {
    html.push("<tr>");
    for (const column of COLUMNS) {
      const cls = column.number ? "number" : column.key === "location" ? "location" : "";
      let cell = escapeHtml(column.text(i));
      if (column.key === "location" && payload.stack[i].length > 1) {
        const frames = payload.stack[i].map((s) => "<li>" + escapeHtml(strings[s]) + "</li>").join("");
        cell = "<details><summary>" + cell + "</summary><ol>" + frames + "</ol></details>";
      }
      const value = column.value ? ' data-value="' + column.value(i) + '"' : "";
      html.push('<td class="' + cls + '"' + value + ">" + cell + "</td>");
    }
    html.push("</tr>");
  }
  body.innerHTML = html.join("");
  let bytes = 0;
  for (const i of state.visible) bytes += payload.size[i];
  const summary = document.getElementById("summary");
  summary.textContent =
    formatCount(state.visible.length) + " of " + formatCount(rowCount) + " locations, " + humanBytes(bytes);
  summary.dataset.visibleRows = state.visible.length;
  summary.dataset.visibleBytes = bytes;
  const pages = Math.max(1, Math.ceil(state.visible.length / PAGE_SIZE));
  document.getElementById("page-info").textContent = "Page " + (state.page + 1) + " of " + pages;
  document.getElementById("previous-page").disabled = state.page === 0;
  document.getElementById("next-page").disabled = state.page >= pages - 1;
}

function main() {
  renderHeader(meta, [["Locations", formatCount(rowCount)]]);
  renderHeaderRow();
  onSettledInput("filter", 120, (value) => {
    state.filter = value;
    state.page = 0;
    refresh();
  });
  document.getElementById("previous-page").onclick = () => {
    state.page--;
    renderPage();
  };
  document.getElementById("next-page").onclick = () => {
    state.page++;
    renderPage();
  };
  refresh();
  document.body.dataset.ready = "true";
}

main();

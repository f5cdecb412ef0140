// The sharelift dashboard's only script: follows the page's server-sent events and puts each
// update in place (by data-live name), and sorts and filters tables. The page is whole
// without it; it fetches nothing but the event stream of its own server.

const page = document.body;

function apply(update) {
  for (const [name, value] of Object.entries(update.text || {})) {
    for (const el of document.querySelectorAll(`[data-live="${name}"]`)) {
      if (el.textContent !== value) el.textContent = value;
    }
  }
  for (const [name, value] of Object.entries(update.html || {})) {
    for (const el of document.querySelectorAll(`[data-live="${name}"]`)) {
      if (el.dataset.html !== value) {
        el.innerHTML = value; // rendered and escaped by the server
        el.dataset.html = value;
      }
    }
  }
  for (const [name, value] of Object.entries(update.value || {})) {
    for (const el of document.querySelectorAll(`[data-live="${name}"]`)) el.value = value;
  }
  for (const [name, value] of Object.entries(update.shown || {})) {
    for (const el of document.querySelectorAll(`[data-live="${name}"]`)) el.hidden = !value;
  }
  for (const table of document.querySelectorAll("table.sortable")) {
    resort(table);
    refilter(table);
  }
}

function follow(url) {
  const state = document.querySelector("[data-connection]");
  const source = new EventSource(url);
  source.addEventListener("update", (event) => {
    if (page.dataset.reload !== undefined) {
      source.close(); // a page that waited for the state store: show it whole
      window.location.reload();
      return;
    }
    apply(JSON.parse(event.data));
    if (state) state.textContent = "live";
    page.dataset.updates = String(Number(page.dataset.updates || "0") + 1);
  });
  source.addEventListener("error", () => {
    if (state) state.textContent = "reconnecting…";
  });
}

// --- sorting ------------------------------------------------------------------------------

function sortValue(row, column) {
  const cell = row.cells[column];
  if (!cell) return "";
  const raw = cell.dataset.sort ?? cell.textContent;
  const number = Number(raw);
  return raw !== "" && !Number.isNaN(number) ? number : raw.toLowerCase();
}

function resort(table) {
  const column = Number(table.dataset.sortColumn);
  if (Number.isNaN(column) || table.dataset.sortColumn === undefined) return;
  const direction = table.dataset.sortDirection === "descending" ? -1 : 1;
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = sortValue(a, column);
    const y = sortValue(b, column);
    return (x < y ? -1 : x > y ? 1 : 0) * direction;
  });
  for (const row of rows) body.appendChild(row);
}

function sortBy(table, column) {
  const same = table.dataset.sortColumn === String(column);
  const direction = same && table.dataset.sortDirection === "ascending" ? "descending" : "ascending";
  table.dataset.sortColumn = String(column);
  table.dataset.sortDirection = direction;
  table.querySelectorAll("thead th").forEach((th, index) => {
    th.setAttribute("aria-sort", index === column ? direction : "none");
  });
  resort(table);
}

// --- filtering ----------------------------------------------------------------------------

function refilter(table) {
  const box = document.querySelector(`[data-filters="${table.dataset.table}"]`);
  if (!box) return;
  const words = (box.querySelector("[data-filter-text]")?.value || "").trim().toLowerCase();
  const state = box.querySelector("[data-filter-state]")?.value || "";
  for (const row of table.tBodies[0].rows) {
    const stateOk = !state || row.dataset.state === state;
    const textOk = !words || row.textContent.toLowerCase().includes(words);
    row.hidden = !(stateOk && textOk) && row.dataset.state !== undefined;
  }
}

for (const table of document.querySelectorAll("table.sortable")) {
  table.querySelectorAll("[data-sort-column]").forEach((button) => {
    button.addEventListener("click", () => sortBy(table, Number(button.dataset.sortColumn)));
  });
  const box = document.querySelector(`[data-filters="${table.dataset.table}"]`);
  if (box) {
    box.addEventListener("input", () => refilter(table));
    box.addEventListener("change", () => refilter(table));
  }
}

if (page.dataset.events) follow(page.dataset.events);

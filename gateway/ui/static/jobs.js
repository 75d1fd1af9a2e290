// The jobs list: GET /api/jobs/ with the filters and cursor of this page's query string.

import { api, el, formatTime, showProblem } from "./api.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 20;
const query = new URLSearchParams(window.location.search);

function listUrl(params) {
  const search = new URLSearchParams();
  for (const key of ["status", "document_type", "limit", "cursor"]) {
    if (params[key]) search.set(key, params[key]);
  }
  const text = search.toString();
  return text ? `?${text}` : window.location.pathname;
}

const filters = {
  status: query.get("status") || "",
  document_type: query.get("document_type") || "",
  limit: query.get("limit") || "",
};
$("status").value = filters.status;
$("document-type").value = filters.document_type;

$("filter-form").addEventListener("submit", (event) => {
  event.preventDefault();
  window.location.assign(listUrl({ ...filters, status: $("status").value,
    document_type: $("document-type").value.trim() }));
});

async function load() {
  const params = new URLSearchParams({ limit: filters.limit || PAGE_SIZE });
  if (filters.status) params.set("status", filters.status);
  if (filters.document_type) params.set("document_type", filters.document_type);
  if (query.get("cursor")) params.set("cursor", query.get("cursor"));
  showProblem(null);
  $("list-state").textContent = "Loading…";
  let page;
  try {
    page = await api("GET", `/api/jobs/?${params}`);
  } catch (problem) {
    $("list-state").textContent = "";
    showProblem(problem);
    return;
  }
  const rows = page.results.map((job) => el("tr", {},
    el("td", { "data-label": "Name" },
      el("a", { href: `/ui/jobs/${encodeURIComponent(job.id)}/` }, job.document_name)),
    el("td", { "data-label": "Type" }, job.document_type),
    el("td", { "data-label": "Status" }, el("span", { className: `badge status-${job.status}` }, job.status)),
    el("td", { "data-label": "Stages" }, job.pipeline_config.stages.join(" → ")),
    el("td", { "data-label": "Created" }, el("time", { dateTime: job.created_at }, formatTime(job.created_at)))));
  $("jobs").tBodies[0].replaceChildren(...rows);
  $("list-state").textContent = rows.length
    ? `${rows.length} job${rows.length === 1 ? "" : "s"}${page.next_cursor ? ", more on the next page" : ""}.`
    : "No jobs match.";
  const next = $("next-page");
  next.hidden = !page.next_cursor;
  if (page.next_cursor) next.href = listUrl({ ...filters, cursor: page.next_cursor });
  const first = $("first-page");
  first.hidden = !query.get("cursor");
  first.href = listUrl(filters);
}

document.addEventListener("gateway:key", load);
load();

// How a job's results read in the page: the text with its entities marked, tables for the rest.

import { el } from "./api.js";

const TEXT_COLLAPSED_CHARS = 600; // longer texts start collapsed
const KIND_COLOURS = 6; // .kind-0 … .kind-5 in app.css

// Entities as the analysis stage gives them, as {entities: [{kind, value, label?, start?, end?}],
// kinds}: a list of {type, text, start, end, label?} (the default analyzer), or
// {kind: [value or {value|text, type?}]} (the simulated one).
export function entityList(given) {
  const entities = [];
  const kinds = [];
  const add = (kind, item) => {
    if (!kinds.includes(kind)) kinds.push(kind);
    if (item === undefined) return;
    if (typeof item === "string" || typeof item === "number") {
      entities.push({ kind, value: String(item) });
      return;
    }
    const value = item?.text ?? item?.value ?? item?.name;
    if (value === undefined || value === null) return;
    const label = item.label ?? (item.type !== kind ? item.type : undefined);
    entities.push({ kind, value: String(value), label, start: item.start, end: item.end });
  };
  if (Array.isArray(given)) {
    for (const item of given) add(String(item?.type ?? item?.label ?? "entity"), item);
  } else if (given && typeof given === "object") {
    for (const [kind, values] of Object.entries(given)) {
      add(kind);
      for (const item of [].concat(values ?? [])) add(kind, item);
    }
  }
  return { entities, kinds };
}

// Non-overlapping spans of `text` to mark: given offsets when they fit, else every occurrence.
export function entitySpans(text, entities) {
  const spans = [];
  for (const entity of entities) {
    if (Number.isInteger(entity.start) && Number.isInteger(entity.end)
        && text.slice(entity.start, entity.end) === entity.value) {
      spans.push({ ...entity });
      continue;
    }
    if (!entity.value.trim()) continue;
    for (let at = text.indexOf(entity.value); at >= 0; at = text.indexOf(entity.value, at + 1)) {
      spans.push({ ...entity, start: at, end: at + entity.value.length });
    }
  }
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  const kept = [];
  for (const span of spans) {
    if (!kept.length || span.start >= kept[kept.length - 1].end) kept.push(span);
  }
  return kept;
}

export function kindClass(kinds, kind) {
  return `kind-${kinds.indexOf(kind) % KIND_COLOURS}`;
}

// The text as nodes, entities in <mark>; never parsed as HTML.
export function markedText(text, entities, kinds) {
  const nodes = [];
  let at = 0;
  for (const span of entitySpans(text, entities)) {
    if (span.start > at) nodes.push(document.createTextNode(text.slice(at, span.start)));
    const what = span.label ? `${span.kind}: ${span.label}` : span.kind;
    nodes.push(el("mark", { className: `entity ${kindClass(kinds, span.kind)}`, title: what,
      "data-kind": span.kind }, text.slice(span.start, span.end)));
    at = span.end;
  }
  if (at < text.length) nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
}

// The extracted text block: collapsed when long, with a button to expand it.
export function textBlock(text, { entities = [], kinds = [], expanded = false, onToggle } = {}) {
  const body = el("div", { className: "doc-text", id: "doc-text", tabIndex: 0,
    "aria-label": "Extracted text" }, ...markedText(text, entities, kinds));
  const wrapper = el("div", { className: "text-block" }, body);
  if (text.length > TEXT_COLLAPSED_CHARS) {
    body.classList.toggle("collapsed", !expanded);
    const button = el("button", { type: "button", className: "link", "aria-controls": "doc-text",
      "aria-expanded": String(expanded) }, expanded ? "Show less" : `Show all ${text.length} characters`);
    button.addEventListener("click", () => onToggle?.(!expanded));
    wrapper.append(button);
  }
  return wrapper;
}

// The entity kinds found, each with its values, in the colours of the marks.
export function entityLegend(entities, kinds) {
  const list = el("dl", { className: "legend" });
  for (const kind of kinds) {
    const values = entities.filter((e) => e.kind === kind);
    list.append(el("dt", {}, el("span", { className: `swatch ${kindClass(kinds, kind)}` }), kind));
    list.append(el("dd", {}, values.length
      ? values.map((e) => (e.label ? `${e.label} ${e.value}` : e.value)).join(", ")
      : el("span", { className: "none" }, "none")));
  }
  return list;
}

// A value as readable nodes: lists of plain values joined, objects as nested tables.
export function valueNode(value) {
  if (value === null || value === undefined) return el("span", { className: "none" }, "—");
  if (Array.isArray(value)) {
    if (!value.length) return el("span", { className: "none" }, "none");
    if (value.every((v) => v === null || typeof v !== "object")) {
      return el("ul", { className: "chips" }, ...value.map((v) => el("li", {}, String(v))));
    }
    return el("ol", {}, ...value.map((v) => el("li", {}, valueNode(v))));
  }
  if (typeof value === "object") return table(value);
  return document.createTextNode(String(value));
}

// A result object as a two-column table of its fields.
export function table(object, caption) {
  const rows = Object.entries(object).map(([key, value]) =>
    el("tr", {}, el("th", { scope: "row" }, key.replaceAll("_", " ")), el("td", {}, valueNode(value))));
  return el("table", { className: "fields" }, caption ? el("caption", {}, caption) : null,
    el("tbody", {}, ...rows));
}

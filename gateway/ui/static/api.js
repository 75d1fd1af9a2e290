// The JSON API as the pages call it: the key (kept in this tab), requests, problem details.

const KEY = "gateway.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// An error answer as RFC 9457 problem details (made up for a network failure or a non-problem body).
export class Problem extends Error {
  constructor(body, status, headers) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.body = body;
    this.status = status;
    this.retryAfter = Number(headers?.get("Retry-After")) || 0;
  }
}

export async function readProblem(response) {
  let body;
  try {
    body = await response.json();
  } catch {
    body = {};
  }
  if (typeof body !== "object" || body === null) body = {};
  return new Problem(
    { title: response.statusText || "Error", status: response.status, ...body },
    response.status,
    response.headers,
  );
}

// fetch() against the API: the parsed JSON body, or a thrown Problem.
export async function api(method, path, body) {
  const headers = { Accept: "application/json", ...authHeaders() };
  const init = { method, headers, cache: "no-store" };
  if (body instanceof FormData) {
    init.body = body; // the browser sets multipart/form-data with its boundary
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new Problem({ title: "Network error", detail: `The API did not answer: ${error.message}` }, 0);
  }
  if (!response.ok) throw await readProblem(response);
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

// Shows a problem in the page's alert region, as the API said it; null clears it.
export function showProblem(problem) {
  const box = document.getElementById("problem");
  box.replaceChildren();
  if (!problem) {
    box.hidden = true;
    return;
  }
  const body = problem.body || { detail: String(problem.message || problem) };
  const heading = el("p", { className: "problem-title" },
    el("strong", {}, body.title || "Error"), body.status ? ` (${body.status})` : "");
  box.append(heading);
  if (body.detail) box.append(el("p", {}, body.detail));
  if (body.errors && typeof body.errors === "object") {
    const list = el("ul");
    for (const [field, messages] of Object.entries(body.errors)) {
      for (const message of [].concat(messages)) {
        list.append(el("li", {}, el("code", {}, field), `: ${message}`));
      }
    }
    box.append(list);
  }
  if (problem.status === 401 || problem.status === 403) {
    box.append(el("p", {}, "Enter an API key above."));
    document.getElementById("api-key")?.focus();
  }
  box.hidden = false;
}

// document.createElement with properties and children (strings become text, never HTML).
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name in node && !name.includes("-")) node[name] = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function bindKeyForm() {
  const form = document.getElementById("key-form");
  if (!form) return;
  const input = document.getElementById("api-key");
  const state = document.getElementById("key-state");
  const show = () => {
    state.textContent = apiKey() ? "A key is set." : "No key set.";
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (key) sessionStorage.setItem(KEY, key);
    input.value = "";
    show();
    document.dispatchEvent(new CustomEvent("gateway:key"));
  });
  document.getElementById("key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    show();
  });
  show();
}

bindKeyForm();

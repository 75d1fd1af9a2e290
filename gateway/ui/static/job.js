// The job page: the job's state from the live events route, kept current as events arrive.

import { api, el, formatTime, showProblem } from "./api.js";
import { TERMINAL, followJob } from "./live.js";
import { entityLegend, entityList, table, textBlock } from "./render.js";

const root = document.getElementById("job");
const jobId = root.dataset.jobId;
const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(["pending", "processing"]);
const LIVE_WORDS = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  finished: "finished",
  stopped: "not following",
};

let job = null;
let textExpanded = false;
let fullText = null; // the whole text of a referenced (large) extraction, once loaded
let countdown = null;

function stageOf(name) {
  job.results.stages[name] ??= { status: "pending" };
  return job.results.stages[name];
}

// Applies one lifecycle event to the job (the events' payloads are in docs/events.md).
function apply(type, data) {
  const payload = data.payload || {};
  const stage = payload.stage && stageOf(payload.stage);
  const at = data.timestamp;
  switch (type) {
    case "job.stage_started":
      job.status = "processing";
      Object.assign(stage, { status: "started", attempts: payload.attempt, timestamp: at });
      delete stage.retry_at;
      break;
    case "job.stage_retrying":
      Object.assign(stage, { error: payload.error, timestamp: at,
        retry_at: Date.now() + (payload.countdown || 0) * 1000 });
      break;
    case "job.stage_completed":
      Object.assign(stage, { status: "completed", results: payload.result, timestamp: at });
      delete stage.error;
      delete stage.retry_at;
      break;
    case "job.completed":
      job.status = "completed";
      break;
    case "job.failed":
      job.status = "failed";
      job.errors = { stage: payload.stage, message: payload.error };
      Object.assign(stage, { status: "failed", error: payload.error, timestamp: at });
      delete stage.retry_at;
      break;
    case "job.cancelled":
      job.status = "cancelled";
      break;
    case "job.retried": {
      job.status = "processing";
      job.errors = null;
      const order = job.pipeline_config.stages;
      for (const name of order.slice(order.indexOf(payload.stage))) {
        const { attempts } = stageOf(name);
        job.results.stages[name] = { status: "pending", ...(attempts ? { attempts } : {}) };
      }
      break;
    }
    default:
      return;
  }
  if (at) job.updated_at = at;
}

function onMessage({ event, data }) {
  if (event === "snapshot") {
    job = data;
  } else if (job) {
    apply(event, data);
  }
  render();
  // Which stage a cancel or a failure left cancelled or skipped is the API's to say.
  if (TERMINAL.has(event)) refresh();
}

async function refresh() {
  try {
    job = await api("GET", `/api/jobs/${encodeURIComponent(jobId)}/`);
    render();
  } catch (problem) {
    showProblem(problem);
  }
}

function render() {
  if (!job) return;
  document.title = `${job.document_name} · Document Processing Gateway`;
  $("job-title").textContent = job.document_name;
  $("job-type").textContent = job.document_type;
  const status = $("job-status");
  status.textContent = job.status;
  status.className = `badge status-${job.status}`;
  $("cancel-button").disabled = !ACTIVE.has(job.status);
  $("retry-button").disabled = job.status !== "failed";
  const error = $("job-error");
  error.hidden = !job.errors;
  error.textContent = job.errors ? `Failed in ${job.errors.stage}: ${job.errors.message}` : "";
  renderStages();
  renderResults();
  $("raw-json").textContent = JSON.stringify(job, null, 2);
}

function renderStages() {
  const list = $("stages");
  list.replaceChildren();
  let retrying = false;
  for (const name of job.pipeline_config.stages) {
    const stage = stageOf(name);
    const details = [];
    const provider = job.pipeline_config.providers?.[name];
    if (provider) details.push(`provider ${provider}`);
    if (stage.attempts) details.push(`attempt ${stage.attempts}`);
    if (stage.timestamp) details.push(formatTime(stage.timestamp));
    const item = el("li", { className: `stage status-${stage.status}`, "data-stage": name },
      el("span", { className: "stage-name" }, name),
      el("span", { className: `badge status-${stage.status}` }, stage.status),
      el("span", { className: "stage-details" }, details.join(" · ")));
    if (stage.error && stage.status !== "completed") {
      item.append(el("p", { className: "stage-error" }, stage.error));
    }
    const left = stage.retry_at ? Math.ceil((stage.retry_at - Date.now()) / 1000) : null;
    if (left !== null && stage.status === "started" && ACTIVE.has(job.status)) {
      retrying = left > 0;
      item.append(el("p", { className: "stage-retry" },
        left > 0 ? `Retrying in ${left} s` : "Retrying now"));
    }
    list.append(item);
  }
  // A countdown ticks by itself between events.
  if (retrying && !countdown) countdown = setInterval(renderStages, 500);
  if (!retrying && countdown) {
    clearInterval(countdown);
    countdown = null;
  }
}

function renderResults() {
  const stages = job.results.stages;
  const extraction = stages.extraction?.results;
  const analysis = stages.analysis?.results;
  const enrichment = stages.enrichment?.results;
  $("results").hidden = !(extraction || analysis || enrichment);

  const { entities, kinds } = entityList(analysis?.entities);
  const textBox = $("text-result");
  textBox.replaceChildren();
  if (extraction) {
    const text = extraction.text ?? fullText ?? extraction.text_preview ?? "";
    textBox.append(el("h3", {}, "Extracted text"));
    if (extraction.stats) textBox.append(statsLine(extraction.stats));
    textBox.append(textBlock(text, { entities, kinds, expanded: textExpanded,
      onToggle: (open) => { textExpanded = open; renderResults(); } }));
    if (extraction.text_ref && fullText === null) {
      const button = el("button", { type: "button", className: "link" },
        `Load the whole text (${extraction.text_length} characters)`);
      button.addEventListener("click", loadFullText);
      textBox.append(button);
    }
  }
  const analysisBox = $("analysis-result");
  analysisBox.replaceChildren();
  if (analysis) {
    analysisBox.append(el("h3", {}, "Analysis"));
    if (kinds.length) {
      analysisBox.append(el("h4", {}, "Entities"), entityLegend(entities, kinds));
    }
    const { entities: _, ...rest } = analysis;
    if (Object.keys(rest).length) analysisBox.append(table(rest));
  }
  const enrichmentBox = $("enrichment-result");
  enrichmentBox.replaceChildren();
  if (enrichment) {
    enrichmentBox.append(el("h3", {}, "Enrichment"), table(enrichment));
  }
  const other = $("other-results");
  other.replaceChildren();
  for (const [name, stage] of Object.entries(stages)) {
    if (!["extraction", "analysis", "enrichment"].includes(name) && stage.results) {
      other.append(el("h3", {}, name), table(stage.results));
    }
  }
}

function statsLine(stats) {
  const parts = Object.entries(stats).map(([key, value]) => `${value} ${key}`);
  return el("p", { className: "note" }, parts.join(" · "));
}

async function loadFullText() {
  try {
    fullText = await api("GET", job.results.stages.extraction.results.text_ref);
    textExpanded = true;
    renderResults();
  } catch (problem) {
    showProblem(problem);
  }
}

async function act(action) {
  showProblem(null);
  try {
    job = await api("POST", `/api/jobs/${encodeURIComponent(jobId)}/${action}/`);
    render();
    if (action === "retry") live.resume();
  } catch (problem) {
    showProblem(problem);
    refresh();
  }
}

$("cancel-button").addEventListener("click", () => act("cancel"));
$("retry-button").addEventListener("click", () => act("retry"));

const live = followJob(jobId, {
  onMessage(message) {
    showProblem(null);
    onMessage(message);
  },
  onState(state) {
    $("live-state").textContent = LIVE_WORDS[state] || state;
    root.dataset.live = state;
  },
  onProblem: showProblem,
});
document.addEventListener("gateway:key", () => live.resume());

// The submit form: a file or pasted text, the stages, then POST /api/jobs/ and on to the job page.

import { api, el, showProblem } from "./api.js";

const $ = (id) => document.getElementById(id);
const form = $("submit-form");
const content = $("document-content");
const name = $("document-name");
const EXAMPLE = "Hi, my name is Gabriela Souza. Please cancel my subscription (SubscriptionID 2342) "
  + "by 31 March 2025 and refund the $49.90 charged on 3 March 2025. You can reach me at "
  + "gabriela@example.com or +1 415 555 0199.\n\nBest regards,\nGabriela Souza";

let chosenFile = null; // sent as a multipart file part; otherwise the text goes as JSON

function useFile(file) {
  showProblem(null);
  chosenFile = file;
  $("file-name").textContent = file
    ? `Sending the file ${file.name} (${Math.ceil(file.size / 1024)} KiB) instead of text.` : "";
  $("file-state").hidden = !file;
  content.disabled = Boolean(file);
  if (file) name.value = file.name;
  else $("document-file").value = "";
}

$("document-file").addEventListener("change", (event) => {
  const [file] = event.target.files;
  useFile(file || null);
});
$("file-remove").addEventListener("click", () => {
  useFile(null);
  $("document-file").focus();
});

const zone = $("drop-zone");
zone.addEventListener("dragover", (event) => {
  event.preventDefault();
  zone.classList.add("dragging");
});
zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("dragging");
  const [file] = event.dataTransfer.files;
  if (file) useFile(file);
});

$("example").addEventListener("click", () => {
  useFile(null);
  content.value = EXAMPLE;
  name.value ||= "Cancellation request";
  content.focus();
});

// A provider choice per stage, from GET /api/providers/; only the chosen stages' are offered.
async function loadProviders() {
  let choices;
  try {
    choices = await api("GET", "/api/providers/");
  } catch (problem) {
    showProblem(problem);
    return;
  }
  const fields = Object.entries(choices).map(([stage, { default: configured, available }]) =>
    el("div", { className: "field", "data-stage": stage },
      el("label", { htmlFor: `provider-${stage}` }, `${stage[0].toUpperCase()}${stage.slice(1)} provider`),
      el("select", { id: `provider-${stage}`, name: `provider-${stage}` },
        el("option", { value: "" }, `default (${configured})`),
        ...available.map((name) => el("option", { value: name }, name)))));
  $("provider-fields").replaceChildren(...fields);
  $("providers").hidden = false;
  showChosenStages();
}

function chosenStages() {
  return form.elements.stages.value.split(",");
}

function showChosenStages() {
  const stages = chosenStages();
  for (const field of $("provider-fields").children) {
    field.hidden = !stages.includes(field.dataset.stage);
  }
}

function chosenProviders() {
  const providers = {};
  for (const stage of chosenStages()) {
    const name = document.getElementById(`provider-${stage}`)?.value;
    if (name) providers[stage] = name;
  }
  return providers;
}

for (const radio of form.elements.stages) radio.addEventListener("change", showChosenStages);
document.addEventListener("gateway:key", loadProviders);
loadProviders();

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showProblem(null);
  const button = $("submit-button");
  button.disabled = true;
  const pipeline = { stages: chosenStages() };
  const providers = chosenProviders();
  if (Object.keys(providers).length) pipeline.providers = providers;
  const fields = {
    document_name: name.value.trim() || "Pasted text",
    document_type: $("document-type").value.trim(),
    pipeline_config: pipeline,
  };
  let body;
  if (chosenFile) {
    // multipart/form-data: the file as it is; pipeline_config as JSON text.
    body = new FormData();
    body.set("document_name", fields.document_name);
    body.set("document_type", fields.document_type);
    body.set("pipeline_config", JSON.stringify(pipeline));
    body.set("file", chosenFile, chosenFile.name);
  } else {
    body = { ...fields, document_content: content.value };
  }
  try {
    const job = await api("POST", "/api/jobs/", body);
    window.location.assign(`/ui/jobs/${encodeURIComponent(job.id)}/`);
  } catch (problem) {
    showProblem(problem);
    $("problem").scrollIntoView({ block: "nearest" });
    button.disabled = false;
  }
});

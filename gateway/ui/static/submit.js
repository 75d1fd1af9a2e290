// The submit form: a file or pasted text, the stages, then POST /api/jobs/ and on to the job page.

import { api, showProblem } from "./api.js";

const $ = (id) => document.getElementById(id);
const form = $("submit-form");
const content = $("document-content");
const name = $("document-name");
const EXAMPLE = "Hi, my name is Gabriela, I want to cancel my subscription. SubscriptionID 2342. "
  + "You can reach me at gabriela@example.com or +1 415 555 0199.";

async function useFile(file) {
  showProblem(null);
  try {
    // The API takes text: a file that is not UTF-8 is refused here, with its name.
    content.value = new TextDecoder("utf-8", { fatal: true }).decode(await file.arrayBuffer());
  } catch {
    showProblem({ body: { title: "Not a text file",
      detail: `${file.name} is not UTF-8 text; choose a text file or paste the text.` } });
    return;
  }
  name.value = file.name;
}

$("document-file").addEventListener("change", (event) => {
  const [file] = event.target.files;
  if (file) useFile(file);
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
  content.value = EXAMPLE;
  name.value ||= "Cancellation request";
  content.focus();
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showProblem(null);
  const button = $("submit-button");
  button.disabled = true;
  const stages = form.elements.stages.value.split(",");
  try {
    const job = await api("POST", "/api/jobs/", {
      document_name: name.value.trim() || "Pasted text",
      document_type: $("document-type").value.trim(),
      document_content: content.value,
      pipeline_config: { stages },
    });
    window.location.assign(`/ui/jobs/${encodeURIComponent(job.id)}/`);
  } catch (problem) {
    showProblem(problem);
    $("problem").scrollIntoView({ block: "nearest" });
    button.disabled = false;
  }
});

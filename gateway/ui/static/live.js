// A job's live events (GET /api/jobs/{id}/events/), read as server-sent events.
//
// EventSource cannot send an Authorization header, so the stream is read with fetch() and
// parsed here, following EventSource's rules: the last `id:` seen is sent back as
// Last-Event-ID when the connection drops, after the server's `retry:` delay, so nothing is
// missed or repeated. The stream ends for good after the job's terminal event.

import { Problem, authHeaders, readProblem } from "./api.js";

export const TERMINAL = new Set(["job.completed", "job.failed", "job.cancelled"]);
const FINISHED = new Set(["completed", "failed", "cancelled"]);

// handlers: onMessage({event, data, id}), onState("connecting" | "live" | "reconnecting" |
// "finished" | "stopped"), onProblem(problem). Returns {resume(), stop()}.
export function followJob(jobId, handlers) {
  const url = `/api/jobs/${encodeURIComponent(jobId)}/events/`;
  let lastId = "";
  let retryMs = 1000;
  let controller = null;
  let timer = null;
  let running = false;

  async function connect() {
    running = true;
    controller = new AbortController();
    const headers = { Accept: "text/event-stream", ...authHeaders() };
    if (lastId) headers["Last-Event-ID"] = lastId;
    handlers.onState(lastId ? "reconnecting" : "connecting");
    let finished = false;
    try {
      const response = await fetch(url, { headers, signal: controller.signal, cache: "no-store" });
      if (!response.ok) {
        const problem = await readProblem(response);
        handlers.onProblem(problem);
        // Busy or unavailable: try again when asked to; anything else will not get better.
        if (response.status >= 500) return later((problem.retryAfter || 5) * 1000);
        running = false;
        return handlers.onState("stopped");
      }
      handlers.onState("live");
      finished = await read(response.body);
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error instanceof Problem) handlers.onProblem(error);
    }
    if (finished) {
      running = false;
      handlers.onState("finished");
    } else {
      later(retryMs);
    }
  }

  // Reads messages until the stream ends; true if it ended with the job finished.
  async function read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let finished = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return finished;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message = parse(block);
        if (message && dispatch(message)) finished = true;
      }
    }
  }

  function parse(block) {
    const message = { event: "message", data: [], id: null };
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue; // a comment: the heartbeat
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") message.event = value;
      else if (field === "data") message.data.push(value);
      else if (field === "id") message.id = value;
      else if (field === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (message.id !== null) lastId = message.id;
    if (!message.data.length) return null;
    return { event: message.event, id: message.id, data: JSON.parse(message.data.join("\n")) };
  }

  // Hands a message over; true if it is the job's last.
  function dispatch(message) {
    handlers.onMessage(message);
    if (TERMINAL.has(message.event)) return true;
    return message.event === "snapshot" && FINISHED.has(message.data.status);
  }

  function later(delay) {
    handlers.onState("reconnecting");
    timer = setTimeout(connect, delay);
  }

  function stop() {
    clearTimeout(timer);
    controller?.abort();
    running = false;
    handlers.onState("stopped");
  }

  connect();
  return {
    // Follow again after the stream ended (a retried job): from the last event seen.
    resume() {
      if (!running) connect();
    },
    stop,
  };
}

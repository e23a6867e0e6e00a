// The admin console. Plain script, no build step: the server embeds this
// file as it is. Every datum comes from the admin JSON API with the token
// the admin pasted; nothing is rendered through innerHTML, so event data
// (which users wrote) can never become markup.
"use strict";

const TOKEN_KEY = "autogpt-es-admin-token";
// Once a second: operators watch a rebuild move, and the status query is
// cheap (one row per projector).
const REFRESH_MS = 1000;

const $ = (id) => document.getElementById(id);
let refreshTimer = null;
let refreshing = false;
let logNext = null;
let streamNext = null;
let timelineSteps = [];
let stepAt = 0;

// --- talking to the API --------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

// One call; never throws. `ok` is false for any non-2xx answer or a
// network failure, and `body` then holds what the server said.
async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + token() };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    const response = await fetch(path, init);
    const text = await response.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch (_) {
      // Not JSON (a proxy's page, say): keep the text to show it.
    }
    return { ok: response.ok, status: response.status, body: parsed };
  } catch (e) {
    return { ok: false, status: 0, body: String(e) };
  }
}

// The API's error shape is `{detail, error_type, ...}`; `detail` may be a
// string or a structured reason.
function describe(result) {
  const b = result.body;
  if (b && typeof b === "object" && "detail" in b) {
    const detail = typeof b.detail === "string" ? b.detail : JSON.stringify(b.detail);
    return `${result.status} ${b.error_type || ""}: ${detail}`.replace(" :", ":");
  }
  if (result.status === 0) return "network error: " + b;
  return `${result.status}: ${typeof b === "string" ? b : JSON.stringify(b)}`;
}

function showError(id, message) {
  const el = $(id);
  el.textContent = message || "";
  el.hidden = !message;
}

// --- signing in and out ---------------------------------------------------

// The token's claims, for the header only: the server checks the token.
function claims(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch (_) {
    return {};
  }
}

async function signIn(jwt) {
  sessionStorage.setItem(TOKEN_KEY, jwt);
  showError("error", "");
  const result = await api("GET", "/api/admin/projections");
  if (!result.ok) {
    // A non-admin (or expired) token sees the API's refusal and nothing else.
    signOut();
    showError("error", describe(result));
    return;
  }
  const c = claims(jwt);
  $("whoami").textContent = c.email || c.sub || "";
  $("sign-in-panel").hidden = true;
  $("console").hidden = false;
  $("sign-out").hidden = false;
  renderStatus(result.body);
  refreshTimer = setInterval(refresh, REFRESH_MS);
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(refreshTimer);
  refreshTimer = null;
  $("console").hidden = true;
  $("sign-in-panel").hidden = false;
  $("sign-out").hidden = true;
  $("whoami").textContent = "";
  document.querySelector("#projections tbody").replaceChildren();
  for (const id of ["log-events", "stream-events"]) {
    document.querySelector(`#${id} tbody`).replaceChildren();
  }
  for (const id of ["executor", "scheduler", "verify-result", "state-result", "log-head"]) {
    $(id).textContent = "";
  }
}

// --- projections ------------------------------------------------------------

async function refresh() {
  // A slow answer must not pile requests up behind it.
  if (refreshing || !token()) return;
  refreshing = true;
  try {
    const result = await api("GET", "/api/admin/projections");
    if (result.ok) {
      showError("error", "");
      renderStatus(result.body);
    } else if (result.status === 401 || result.status === 403) {
      // The token expired or lost its role: stop showing data.
      signOut();
      showError("error", describe(result));
    } else {
      showError("error", "refresh failed: " + describe(result));
    }
  } finally {
    refreshing = false;
  }
}

function cell(row, key) {
  let td = row.querySelector(`td[data-key="${key}"]`);
  if (!td) {
    td = document.createElement("td");
    td.dataset.key = key;
    row.appendChild(td);
  }
  return td;
}

// What a rebuild in progress (or its failure) looks like in one line.
function rebuildText(r) {
  if (!r) return "";
  const parts = [];
  if (r.percent != null) parts.push(`${Number(r.percent).toFixed(1)}%`);
  if (r.events_done != null) parts.push(`${r.events_done}/${r.events_total ?? "?"} events`);
  if (r.eta_seconds != null) parts.push(`ETA ${Math.round(r.eta_seconds)}s`);
  if (r.error) parts.push("error: " + r.error);
  return parts.join(", ");
}

function renderStatus(status) {
  const horizon = status.horizon ? JSON.stringify(status.horizon) : "";
  $("log-head").textContent = `Head ${status.head} (${status.head_token}) horizon ${horizon}`;
  $("executor").textContent = JSON.stringify(status.executor, null, 2);
  $("scheduler").textContent = JSON.stringify(status.scheduler, null, 2);
  const tbody = document.querySelector("#projections tbody");
  const seen = new Set();
  for (const p of status.projections || []) {
    seen.add(p.name);
    // Rows are updated in place, not rebuilt: a button being clicked
    // during a refresh stays the same element.
    let row = tbody.querySelector(`tr[data-projection="${CSS.escape(p.name)}"]`);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.projection = p.name;
      tbody.appendChild(row);
    }
    const state = p.state || "live";
    row.dataset.state = state;
    cell(row, "name").textContent = p.name;
    cell(row, "state").textContent = state;
    cell(row, "version").textContent = p.version ?? "";
    cell(row, "checkpoint").textContent = p.checkpoint;
    cell(row, "lag_events").textContent = p.lag_events;
    cell(row, "lag_ms").textContent = p.lag_ms;
    cell(row, "rebuild").textContent = rebuildText(p.rebuild);
    cell(row, "last_error").textContent = p.last_error || "";
    const actions = cell(row, "actions");
    let button = actions.querySelector("button.rebuild");
    if (!button) {
      button = document.createElement("button");
      button.type = "button";
      button.className = "rebuild";
      button.textContent = "Rebuild";
      button.addEventListener("click", () => rebuild(p.name, button));
      actions.appendChild(button);
    }
    button.disabled = state === "rebuilding";
  }
  for (const row of [...tbody.children]) {
    if (!seen.has(row.dataset.projection)) row.remove();
  }
}

async function rebuild(name, button) {
  button.disabled = true;
  showError("rebuild-error", "");
  const result = await api("POST", `/api/admin/projections/${encodeURIComponent(name)}/rebuild`);
  if (!result.ok) showError("rebuild-error", `rebuild ${name}: ${describe(result)}`);
  button.disabled = false;
  refresh();
}

// --- audit verify -------------------------------------------------------------

async function verify() {
  const out = $("verify-result");
  out.textContent = "verifying…";
  const result = await api("POST", "/api/admin/audit/verify");
  out.classList.toggle("error", !result.ok);
  out.textContent = result.ok ? JSON.stringify(result.body, null, 2) : describe(result);
}

// --- the log and the streams -----------------------------------------------

function td(text) {
  const el = document.createElement("td");
  el.textContent = text ?? "";
  return el;
}

// A stream id that opens the stream's history when clicked.
function streamLink(streamId) {
  const a = document.createElement("a");
  a.href = "#stream=" + encodeURIComponent(streamId);
  a.className = "stream-link";
  a.dataset.stream = streamId;
  a.textContent = streamId;
  a.addEventListener("click", (e) => {
    e.preventDefault();
    $("stream-input").value = streamId;
    openStream(streamId);
  });
  return a;
}

function json(value) {
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  const text = JSON.stringify(value);
  summary.textContent = text.length > 60 ? text.slice(0, 60) + "…" : text;
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(value, null, 2);
  details.append(summary, pre);
  const el = document.createElement("td");
  el.appendChild(details);
  return el;
}

function logQuery(after) {
  const q = new URLSearchParams();
  const put = (name, id) => {
    const v = $(id).value.trim();
    if (v) q.set(name, v);
  };
  put("event_type", "filter-type");
  put("category", "filter-category");
  put("user_id", "filter-user");
  put("from", "filter-from");
  put("to", "filter-to");
  put("limit", "filter-limit");
  if (after) q.set("after", after);
  return q.toString();
}

// Search from the start (`after` null) or load the page after `after`,
// appending: the log is read forward.
async function searchLog(after) {
  const tbody = document.querySelector("#log-events tbody");
  if (!after) tbody.replaceChildren();
  showError("log-error", "");
  const result = await api("GET", "/api/audit/events?" + logQuery(after));
  if (!result.ok) {
    showError("log-error", describe(result));
    return;
  }
  for (const e of result.body.events) {
    const row = document.createElement("tr");
    row.dataset.token = e.token;
    const stream = document.createElement("td");
    stream.appendChild(streamLink(e.stream_id));
    const type = td(e.event_type);
    type.className = "event-type";
    row.append(td(e.token), stream, td(e.version), type, td(e.metadata && e.metadata.user_id), td(e.recorded_at));
    tbody.appendChild(row);
  }
  logNext = result.body.next;
  $("log-more").disabled = !logNext;
}

async function openStream(streamId, fromVersion) {
  const tbody = document.querySelector("#stream-events tbody");
  if (!fromVersion) tbody.replaceChildren();
  showError("stream-error", "");
  $("stream-events").dataset.stream = streamId;
  const path = `/api/audit/streams/${encodeURIComponent(streamId)}?from_version=${fromVersion || 0}&limit=100`;
  const result = await api("GET", path);
  if (!result.ok) {
    showError("stream-error", describe(result));
    return;
  }
  for (const e of result.body.events) {
    const row = document.createElement("tr");
    row.dataset.version = e.version;
    const type = td(e.event_type);
    type.className = "event-type";
    const fold = document.createElement("button");
    fold.type = "button";
    fold.className = "state-at";
    fold.textContent = "State here";
    fold.addEventListener("click", () => {
      $("state-stream").value = streamId;
      $("state-version").value = e.version;
      loadState(streamId, e.version);
    });
    const actions = document.createElement("td");
    actions.appendChild(fold);
    row.append(td(e.version), type, td(e.recorded_at), json(e.data), json(e.metadata), actions);
    tbody.appendChild(row);
  }
  streamNext = result.body.next_version;
  $("stream-more").hidden = streamNext == null;
}

async function loadState(streamId, version) {
  showError("state-error", "");
  const out = $("state-result");
  out.textContent = "";
  const query = version ? `?version=${encodeURIComponent(version)}` : "";
  const result = await api("GET", `/api/audit/streams/${encodeURIComponent(streamId)}/state${query}`);
  if (!result.ok) {
    showError("state-error", describe(result));
    return;
  }
  out.textContent = JSON.stringify(result.body, null, 2);
}

// --- run timelines ---------------------------------------------------------------

// At most this many pages of 100 steps: a view to step through, not an
// export.
const TIMELINE_PAGES = 10;

async function openTimeline(graphId, runId) {
  showError("timeline-error", "");
  const tbody = document.querySelector("#timeline-steps tbody");
  tbody.replaceChildren();
  $("timeline-summary").textContent = "";
  $("timeline-step").hidden = true;
  timelineSteps = [];
  const base = `/api/graphs/${encodeURIComponent(graphId)}/executions/${encodeURIComponent(runId)}/timeline`;
  let head = null;
  for (let page = 1; page <= TIMELINE_PAGES; page++) {
    const result = await api("GET", `${base}?page=${page}&page_size=100`);
    if (!result.ok) {
      showError("timeline-error", describe(result));
      return;
    }
    head = result.body;
    timelineSteps.push(...head.steps);
    if (head.steps.length === 0 || timelineSteps.length >= head.total_steps) break;
  }
  const parts = [head.status, `${head.total_steps} steps`];
  if (head.replayed_from) {
    parts.push(head.forked_at ? `fork at node ${head.forked_at} of run ${head.replayed_from}` : `replay of run ${head.replayed_from}`);
  }
  if (head.diverged) parts.push(`diverged at node ${head.diverged.node_id}: ${head.diverged.reason}`);
  $("timeline-summary").textContent = parts.join(" · ");
  timelineSteps.forEach((s, i) => {
    const row = document.createElement("tr");
    row.dataset.step = i;
    const ran = td(s.recorded ? "recorded" : "live");
    ran.className = "ran";
    row.append(td(i + 1), td(s.node_id), td(s.block_name), td(s.status), ran, td(s.duration), td(s.cost));
    row.addEventListener("click", () => showStep(i));
    tbody.appendChild(row);
  });
  if (timelineSteps.length) showStep(0);
}

// Show one step whole; the table marks which.
function showStep(i) {
  stepAt = Math.max(0, Math.min(i, timelineSteps.length - 1));
  const s = timelineSteps[stepAt];
  $("timeline-step").hidden = false;
  $("step-position").textContent = `Step ${stepAt + 1} of ${timelineSteps.length}`;
  $("step-title").textContent = `${s.block_name} (node ${s.node_id}): ${s.status}, ${s.recorded ? "recorded" : "live"}`;
  $("step-input").textContent = JSON.stringify(s.input_data, null, 2);
  $("step-output").textContent = JSON.stringify(s.output_data, null, 2);
  $("step-calls").textContent = JSON.stringify(s.calls, null, 2);
  $("step-prev").disabled = stepAt === 0;
  $("step-next").disabled = stepAt === timelineSteps.length - 1;
  for (const row of document.querySelectorAll("#timeline-steps tbody tr")) {
    row.classList.toggle("current", Number(row.dataset.step) === stepAt);
  }
}

// --- wiring -------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const jwt = $("token").value.trim();
    if (jwt) signIn(jwt);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("audit-verify").addEventListener("click", verify);
  $("log-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    searchLog(null);
  });
  $("log-more").addEventListener("click", () => logNext && searchLog(logNext));
  $("stream-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("stream-input").value.trim();
    if (id) openStream(id);
  });
  $("stream-more").addEventListener("click", () => {
    const id = $("stream-events").dataset.stream;
    if (id && streamNext != null) openStream(id, streamNext);
  });
  $("state-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("state-stream").value.trim();
    if (id) loadState(id, $("state-version").value.trim());
  });
  $("timeline-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const graphId = $("timeline-graph").value.trim();
    const runId = $("timeline-run").value.trim();
    if (graphId && runId) openTimeline(graphId, runId);
  });
  $("step-prev").addEventListener("click", () => showStep(stepAt - 1));
  $("step-next").addEventListener("click", () => showStep(stepAt + 1));
  // A reload within the tab keeps the session (sessionStorage).
  const saved = token();
  if (saved) signIn(saved);
});

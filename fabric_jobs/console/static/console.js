"use strict";
// The fabric-jobs console: a jobs table with filters, counts by status, running jobs' progress, a job's detail and
// Cancel, Cancel of every job not ended of a workspace or an item (its count shown first), kept live by server-sent
// events. Talks only to /console/api on the admin port; nothing is loaded from elsewhere.

const STATUSES = ["NotStarted", "InProgress", "Completed", "Failed", "Cancelled"];
const TERMINAL = new Set(["Completed", "Failed", "Cancelled"]);
const TOKEN_KEY = "fabricJobsAdminToken";
const $ = (selector) => document.querySelector(selector);

const state = {
  filters: {}, rows: new Map(), nextPageToken: "", detailKey: null, events: null, pendingCancel: null,
  pendingCancelAll: null,
};
const FILTER_NAMES = { tenant: "tenant", workspace: "workspace", itemType: "item type", item: "item", jobType: "job type" };

function keyOf(job) {
  return [job.tenantId, job.workspaceId, job.itemType, job.itemId, job.jobType, job.jobInstanceId].join("/");
}

function keyFields(job) {
  const { tenantId, workspaceId, itemType, itemId, jobType, jobInstanceId } = job;
  return { tenantId, workspaceId, itemType, itemId, jobType, jobInstanceId };
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function shortTime(text) {
  return text ? text.replace("T", " ").replace(/\.\d+Z$/, "") : "–";
}

function showMessage(text) {
  const message = $("#message");
  message.textContent = text;
  message.hidden = !text;
}

async function askToken() {
  const dialog = $("#login");
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  sessionStorage.setItem(TOKEN_KEY, $("#login-form").elements.token.value);
}

async function api(path, options = {}) {
  for (;;) {
    const headers = { ...(options.headers || {}) };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401) {
      await askToken();
      continue;
    }
    const body = await response.json();
    if (!response.ok) throw new Error(body.message || `${response.status} ${response.statusText}`);
    return body;
  }
}

function query(extra = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...state.filters, ...extra })) if (value) params.set(name, value);
  return params.toString();
}

function statusCell(job) {
  const cell = el("td", {}, el("span", { className: `status ${job.status}` }, job.status));
  if (job.cancelRequested && job.status === "InProgress") cell.append(el("span", { className: "cancelling" }, "cancelling…"));
  return cell;
}

function percentText(percent) {
  return `${Number(percent.toFixed(1))}%`;
}

function progressText(progress) {
  return [progress.percent !== undefined ? percentText(progress.percent) : "", progress.message].filter(Boolean).join(" ");
}

// What the handler last reported (ctx.report_progress): a bar (moving without a percent) and its text.
function progressView(progress) {
  const bar = el("progress", { max: "100" });
  if (progress.percent !== undefined) bar.value = progress.percent;
  const text = progressText(progress);
  return el("span", { className: "progress", title: `${text} (at ${progress.updateTimeUtc})` }, bar,
    el("span", { className: "progress-text" }, text));
}

function progressCell(job) {
  const cell = el("td", { className: "progress-cell" });
  if (job.progress && job.status === "InProgress") cell.append(progressView(job.progress));
  return cell;
}

function renderRow(job) {
  const actions = el("td", { className: "actions" });
  if (!TERMINAL.has(job.status)) {
    const cancel = el("button", { className: "danger small", "data-action": "cancel" }, "Cancel");
    cancel.addEventListener("click", (event) => {
      event.stopPropagation();
      confirmCancel(job);
    });
    actions.append(cancel);
  }
  const row = el(
    "tr",
    { "data-key": keyOf(job), "data-status": job.status },
    el("td", { className: "mono" }, shortTime(job.createTimeUtc)),
    statusCell(job),
    progressCell(job),
    el("td", { className: "mono" }, job.jobInstanceId),
    el("td", {}, job.itemType),
    el("td", {}, job.jobType),
    el("td", { className: "mono" }, job.tenantId),
    actions,
  );
  row.addEventListener("click", () => showDetail(job));
  return row;
}

function upsert(job, { live = false } = {}) {
  const key = keyOf(job);
  const row = renderRow(job);
  const existing = state.rows.get(key);
  if (existing) existing.replaceWith(row);
  else if (live) $("#jobs tbody").prepend(row);
  else $("#jobs tbody").append(row);
  if (live) row.classList.add("flash");
  state.rows.set(key, row);
  $("#empty").hidden = state.rows.size > 0;
  if (state.detailKey === key) showDetail(job);
}

async function loadJobs() {
  const page = await api(`/console/api/jobs?${query()}`);
  $("#jobs tbody").replaceChildren();
  state.rows.clear();
  page.jobInstances.forEach((job) => upsert(job));
  state.nextPageToken = page.nextPageToken;
  $("#more").hidden = !page.nextPageToken;
  $("#empty").hidden = state.rows.size > 0;
}

async function loadMore() {
  const page = await api(`/console/api/jobs?${query({ pageToken: state.nextPageToken })}`);
  page.jobInstances.forEach((job) => upsert(job));
  state.nextPageToken = page.nextPageToken;
  $("#more").hidden = !page.nextPageToken;
}

async function loadCounts() {
  const { counts, total } = await api(`/console/api/counts?${query({ status: "" })}`);
  const chips = [["", "All", total], ...STATUSES.map((status) => [status, status, counts[status] || 0])];
  $("#counts").replaceChildren(
    ...chips.map(([status, label, count]) => {
      const chip = el("button", { className: "count", type: "button", "data-status": status || "all" });
      chip.append(el("span", {}, label), el("b", {}, String(count)));
      if ((state.filters.status || "") === status) chip.classList.add("selected");
      chip.addEventListener("click", () => {
        $("#filters").elements.namedItem("status").value = status;
        applyFilters();
      });
      return chip;
    }),
  );
}

let countsTimer = null;
function refreshCountsSoon() {
  clearTimeout(countsTimer);
  countsTimer = setTimeout(() => loadCounts().catch((error) => showMessage(error.message)), 300);
}

function callerText(caller) {
  if (!caller) return "–";
  const who = caller.userPrincipalName ? `${caller.userPrincipalName} (${caller.objectId})` : caller.objectId;
  return `${who}, tenant ${caller.tenantId}, app ${caller.appId}`;
}

async function showDetail(job) {
  state.detailKey = keyOf(job);
  const { jobInstance, transitions } = await api(`/console/api/job?${new URLSearchParams(keyFields(job))}`);
  if (state.detailKey !== keyOf(jobInstance)) return;
  const fields = [
    ["Status", statusCell(jobInstance).firstChild],
    ["Progress", jobInstance.progress ? progressView(jobInstance.progress) : "–"],
    ["Job instance", jobInstance.jobInstanceId],
    ["Tenant", jobInstance.tenantId],
    ["Workspace", jobInstance.workspaceId],
    ["Item", `${jobInstance.itemType} ${jobInstance.itemId}`],
    ["Job type", jobInstance.jobType],
    ["Invoked", jobInstance.invokeType],
    ["Created", jobInstance.createTimeUtc],
    ["Started", jobInstance.startTimeUtc || "–"],
    ["Ended", jobInstance.endTimeUtc || "–"],
    ["Cancel asked", jobInstance.cancelRequested ? "yes" : "no"],
    ["Asked by", callerText(jobInstance.caller)],
  ];
  $("#detail-fields").replaceChildren(...fields.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
  const error = jobInstance.errorDetails;
  $("#detail-error").replaceChildren();
  if (error) {
    const box = el("div", { className: "error" });
    box.append(el("p", {}, el("b", {}, error.errorCode), ` (${error.source}, ${error.isPermanent ? "permanent" : "retriable"})`));
    box.append(el("p", {}, error.message));
    for (const more of error.moreDetails || []) box.append(el("p", {}, `${more.errorCode}: ${more.message}`));
    $("#detail-error").append(box);
  }
  $("#detail-history").replaceChildren(
    ...transitions.map((step) =>
      el("li", {}, el("span", { className: "mono" }, step.timeUtc), "  ",
        step.cancelRequested && step.status === "InProgress" ? "cancel requested" : step.status),
    ),
  );
  const cancel = $("#detail-cancel");
  cancel.hidden = TERMINAL.has(jobInstance.status);
  cancel.onclick = () => confirmCancel(jobInstance);
  $("#detail").hidden = false;
}

function confirmCancel(job) {
  state.pendingCancel = job;
  $("#confirm-id").textContent = job.jobInstanceId;
  $("#confirm-type").textContent = `${job.itemType} / ${job.jobType}`;
  $("#confirm").showModal();
}

async function onConfirmClosed() {
  const job = state.pendingCancel;
  state.pendingCancel = null;
  if (!job || $("#confirm").returnValue !== "cancel") return;
  try {
    const { jobInstance } = await api("/console/api/cancel", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(keyFields(job)),
    });
    upsert(jobInstance);
    const still = jobInstance.status === "InProgress" ? ": it was told to stop and is stopping" : "";
    showMessage(`Job ${jobInstance.jobInstanceId} is ${jobInstance.status}${still}.`);
    refreshCountsSoon();
  } catch (error) {
    showMessage(`Cancel failed: ${error.message}`);
  }
}

function canCancelAll(filters) {
  return Boolean(filters.workspace || filters.item);
}

function scopeText(filters) {
  const parts = Object.entries(FILTER_NAMES).filter(([name]) => filters[name]).map(([name, noun]) => `${noun} ${filters[name]}`);
  if (filters.since) parts.push(`created since ${filters.since}`);
  return parts.join(", ");
}

async function confirmCancelAll() {
  const filters = { ...state.filters, status: "" };
  if (!canCancelAll(filters)) return;
  try {
    const { counts } = await api(`/console/api/counts?${query({ status: "" })}`);
    const notEnded = (counts.NotStarted || 0) + (counts.InProgress || 0);
    state.pendingCancelAll = filters;
    $("#confirm-all-count").textContent = String(notEnded);
    $("#confirm-all-scope").textContent = scopeText(filters);
    $("#confirm-all-effect").hidden = notEnded === 0;
    $("#confirm-all-cancel").hidden = notEnded === 0;
    $("#confirm-all").showModal();
  } catch (error) {
    showMessage(`Counting failed: ${error.message}`);
  }
}

async function onConfirmAllClosed() {
  const filters = state.pendingCancelAll;
  state.pendingCancelAll = null;
  if (!filters || $("#confirm-all").returnValue !== "cancel") return;
  try {
    const covered = Object.fromEntries(Object.entries(filters).filter(([, value]) => value));
    const { asked, ended } = await api("/console/api/cancel-all", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(covered),
    });
    const stopping = asked - ended;
    const still = stopping ? `, ${stopping} still stopping (told to stop; stopped by force after the grace)` : "";
    showMessage(`Asked ${asked} job(s) to cancel: ${ended} ended${still}.`);
    refreshCountsSoon();
  } catch (error) {
    showMessage(`Cancel failed: ${error.message}`);
  }
}

function setLive(on, text) {
  const live = $("#live");
  live.className = `live ${on ? "on" : "off"}`;
  live.textContent = text;
}

async function openEvents() {
  if (state.events) state.events.close();
  let ticket = "";
  try {
    ({ ticket } = await api("/console/api/tickets", { method: "POST" }));
  } catch (error) {
    setLive(false, "offline, retrying…");
    setTimeout(openEvents, 2000);
    return;
  }
  const events = new EventSource(`/console/api/events?${query({ ticket })}`);
  state.events = events;
  events.addEventListener("open", () => {
    setLive(true, "live");
    reload();
  });
  events.addEventListener("change", (event) => {
    upsert(JSON.parse(event.data), { live: true });
    refreshCountsSoon();
  });
  const reconnect = () => {
    events.close();
    if (state.events !== events) return;
    setLive(false, "reconnecting…");
    setTimeout(openEvents, 2000);
  };
  events.addEventListener("error", reconnect);
  events.addEventListener("end", reconnect);
}

async function reload() {
  try {
    await Promise.all([loadJobs(), loadCounts()]);
    showMessage("");
  } catch (error) {
    showMessage(error.message);
  }
}

function readFilters() {
  const field = (name) => $("#filters").elements.namedItem(name);
  const filters = {};
  for (const name of ["tenant", "workspace", "itemType", "item", "jobType", "status"]) {
    filters[name] = field(name).value.trim();
  }
  if (field("since").value) filters.since = `${field("since").value}Z`;
  return filters;
}

function applyFilters() {
  state.filters = readFilters();
  $("#cancel-all").disabled = !canCancelAll(state.filters);
  openEvents();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    applyFilters();
  });
  $("#filters").addEventListener("reset", () => setTimeout(applyFilters));
  $("#more").addEventListener("click", () => loadMore().catch((error) => showMessage(error.message)));
  $("#close-detail").addEventListener("click", () => {
    state.detailKey = null;
    $("#detail").hidden = true;
  });
  $("#confirm").addEventListener("close", onConfirmClosed);
  $("#cancel-all").addEventListener("click", confirmCancelAll);
  $("#confirm-all").addEventListener("close", onConfirmAllClosed);
  applyFilters();
});

// graphgate's operator console: a page over /admin/ and nothing else. Every value it shows is
// put in the page as text (never as HTML): principals, key ids and messages are data.
"use strict";

const KEY_STORE = "graphgate-console-key";
const MEASURES = {
  cost_usd: "cost (USD)", requests: "requests", total_tokens: "tokens",
  input_tokens: "input tokens", output_tokens: "output tokens", cache_hits: "cache hits",
  partial_requests: "partial turns",
};
const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777",
  "#65a30d", "#9333ea", "#475569"];
const LIVE_REFRESH_MS = 5000;
let liveTimer = null;

const $ = (id) => document.getElementById(id);

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function number(value, measure) {
  if (value === undefined || value === null) return "";
  if (measure === "cost_usd") return Number(value).toFixed(6);
  return Number(value).toLocaleString("en-US");
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 16) : "";
}

class Refused extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new Refused(response.status, payload);
  return payload;
}

// A table from rows of cells; a cell is text, or a node (a button).
function fillTable(table, headings, rows) {
  table.replaceChildren();
  const head = element("tr");
  headings.forEach((heading) => head.append(element("th", heading)));
  table.append(head);
  rows.forEach((cells) => {
    const row = element("tr");
    cells.forEach((cell) => {
      const td = element("td");
      if (cell instanceof Node) td.append(cell); else td.textContent = cell ?? "";
      row.append(td);
    });
    table.append(row);
  });
  if (!rows.length) {
    const empty = element("tr");
    empty.append(element("td", "none", { colspan: headings.length }));
    table.append(empty);
  }
}

function cards(container, entries) {
  container.replaceChildren(...entries.map(([label, value, id]) => {
    const card = element("div", null, { class: "card" });
    card.append(element("span", label, { class: "label" }));
    card.append(element("strong", value, id ? { "data-figure": id } : {}));
    return card;
  }));
}

// Stacked bars, one per day, one colour per series; the legend names the series.
function barChart(container, days, seriesOf, measure) {
  const names = [...new Set(days.flatMap((day) => Object.keys(seriesOf(day))))].sort();
  const totals = days.map((day) => names.reduce((sum, n) => sum + (seriesOf(day)[n]?.[measure] || 0), 0));
  const top = Math.max(...totals, 0) || 1;
  const width = 720, height = 220, left = 64, bottom = 24, step = (width - left) / days.length;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + bottom}`);
  svg.setAttribute("role", "img");
  const svgElement = (tag, attributes, text) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.entries(attributes).forEach(([name, value]) => node.setAttribute(name, value));
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  svgElement("line", { x1: left, y1: height, x2: width, y2: height, class: "axis" });
  svgElement("text", { x: left - 6, y: 12, "text-anchor": "end", class: "tick" }, number(top, measure));
  svgElement("text", { x: left - 6, y: height, "text-anchor": "end", class: "tick" }, "0");
  days.forEach((day, index) => {
    let y = height;
    names.forEach((name, colour) => {
      const value = seriesOf(day)[name]?.[measure] || 0;
      if (!value) return;
      const tall = (value / top) * (height - 16);
      y -= tall;
      const bar = svgElement("rect", {
        x: left + index * step + 1, y, width: Math.max(step - 2, 1), height: tall,
        fill: PALETTE[colour % PALETTE.length],
      });
      bar.append(document.createElementNS("http://www.w3.org/2000/svg", "title"));
      bar.lastChild.textContent = `${day.date} ${name}: ${number(value, measure)}`;
    });
    if (index % Math.ceil(days.length / 10) === 0) {
      svgElement("text", { x: left + index * step + step / 2, y: height + 16,
        "text-anchor": "middle", class: "tick" }, day.date.slice(5));
    }
  });
  const legend = element("ul", null, { class: "legend" });
  names.forEach((name, colour) => {
    const item = element("li", name);
    item.style.setProperty("--swatch", PALETTE[colour % PALETTE.length]);
    legend.append(item);
  });
  container.replaceChildren(svg, legend);
}

function sum(days, pick, measure) {
  return days.reduce((total, day) => total + (pick(day)?.[measure] || 0), 0);
}

async function showUsage() {
  const days = $("usage-days").value, measure = $("usage-measure").value;
  const principal = $("usage-principal").value.trim();
  const query = new URLSearchParams({ days, by: measure === "partial_requests" ? "requests" : measure });
  if (principal) query.set("principal", principal);
  const usage = await api("GET", `/admin/usage?${query}`);
  cards($("usage-totals"), Object.entries(MEASURES).map(([name, label]) =>
    [label, number(sum(usage.days, (day) => day.total, name), name), `total-${name}`]));
  barChart($("chart-models"), usage.days, (day) => day.models, measure);
  $("routes-figure").hidden = Boolean(principal);
  if (!principal) barChart($("chart-routes"), usage.days, (day) => day.routes, measure);
  showPrincipals(usage, principal);
}

function showPrincipals(usage, principal) {
  const table = $("principals");
  $("principals-title").hidden = table.hidden = Boolean(principal);
  if (principal) return;
  $("principals-title").textContent =
    `Principals (${usage.principals.length} of ${usage.principal_count})`;
  const headings = ["principal", ...Object.values(MEASURES)];
  fillTable(table, headings, usage.principals.map((entry) => {
    const link = element("button", entry.principal, { class: "link" });
    link.addEventListener("click", () => {
      $("usage-principal").value = entry.principal;
      showUsage().catch(report);
    });
    return [link, ...Object.keys(MEASURES).map((name) => number(entry[name] || 0, name))];
  }));
}

async function showKeys() {
  const { keys } = await api("GET", "/admin/keys");
  fillTable($("key-list"),
    ["key id", "principal", "admin", "requests / window", "tokens / min", "budget USD / day",
      "created", "expires", "last used", ""],
    keys.map((key) => [key.key_id, key.principal, key.admin ? "yes" : "", key.quota.rate_limit_max,
      key.quota.tokens_per_minute, key.quota.daily_budget_usd, when(key.created),
      when(key.expires) || "never", when(key.last_used), keyActions(key)]));
}

function keyActions(key) {
  const actions = element("span", null, { class: "actions" });
  if (key.source !== "redis") {
    actions.append(element("span", "keys file"));
    return actions;
  }
  const quota = element("button", "Quota", { "data-key": key.key_id });
  quota.addEventListener("click", () => changeQuota(key).catch(report));
  const revoke = element("button", "Revoke", { "data-revoke": key.key_id, class: "danger" });
  revoke.addEventListener("click", () => revokeKey(key).catch(report));
  actions.append(quota, revoke);
  return actions;
}

const QUOTA_FIELDS = [
  ["rate_limit_max", "Requests per window"], ["tokens_per_minute", "Tokens per minute"],
  ["daily_budget_usd", "Budget USD per day"],
];

// A quota as typed: null for empty (the server's setting), else a number of 0 or more.
function quotaValue(label, text) {
  if (text.trim() === "") return null;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${label}: "${text}" is not a number of 0 or more.`);
  return value;
}

// Asks for each field; sends only those that changed, so another admin's change to another
// field at the same time stays.
async function changeQuota(key) {
  const changes = {};
  for (const [name, label] of QUOTA_FIELDS) {
    const answer = prompt(`${label} for ${key.key_id} (empty: the server's)`, key.quota[name] ?? "");
    if (answer === null) return;
    const value = quotaValue(label, answer);
    if (value !== (key.quota[name] ?? null)) changes[name] = value;
  }
  if (Object.keys(changes).length) {
    await api("PATCH", `/admin/keys/${encodeURIComponent(key.key_id)}`, changes);
  }
  await showKeys();
}

async function revokeKey(key) {
  if (!confirm(`Revoke key ${key.key_id} of ${key.principal}? Its next request is refused.`)) return;
  await api("DELETE", `/admin/keys/${encodeURIComponent(key.key_id)}`);
  await showKeys();
}

async function createKey(event) {
  event.preventDefault();
  const expires = quotaValue("Expires in days", $("new-expires").value);
  const created = await api("POST", "/admin/keys", {
    principal: $("new-principal").value.trim(),
    admin: $("new-admin").checked,
    rate_limit_max: quotaValue("Requests per window", $("new-rate").value),
    tokens_per_minute: quotaValue("Tokens per minute", $("new-tpm").value),
    daily_budget_usd: quotaValue("Budget USD per day", $("new-budget").value),
    expires_at: expires ? new Date(Date.now() + expires * 86400000).toISOString() : null,
  });
  $("secret-value").textContent = created.key;
  $("new-secret").hidden = false;
  $("new-key").reset();
  await showKeys();
}

async function showLive() {
  const live = await api("GET", "/admin/live");
  const global = live.global_concurrency;
  cards($("live-cards"), [
    ["requests in flight", live.in_flight, "in-flight"],
    ["open streams", live.open_streams, "open-streams"],
    ["model calls", live.model_calls, "model-calls"],
    ["global concurrency", global.limit ? `${global.in_use} / ${global.limit}` : "not limited"],
  ]);
  fillTable($("near-limits"), ["principal", "limit", "used", "allowed"],
    live.near_limits.map((entry) => [entry.principal, entry.limit, entry.used, entry.allowed]));
  $("error-minutes").textContent = live.errors.minutes;
  fillTable($("errors"), ["code", "count"],
    Object.entries(live.errors.by_code).sort((a, b) => b[1] - a[1]));
  fillTable($("workers"), ["worker", "in flight", "open streams", "model calls", "reported"],
    live.workers.map((w) => [w.worker, w.in_flight, w.open_streams, w.model_calls, when(w.at)]));
}

async function showThreads(event) {
  event?.preventDefault();
  const principal = $("threads-principal").value.trim();
  const path = `/admin/principals/${encodeURIComponent(principal)}/threads`;
  const { threads } = await api("GET", path);
  $("history").replaceChildren();
  fillTable($("thread-list"), ["route", "thread", ""], threads.map((thread) => {
    const where = `${path}/${encodeURIComponent(thread.route)}/${encodeURIComponent(thread.thread)}`;
    const open = element("button", "Open");
    open.addEventListener("click", () => showHistory(where).catch(report));
    const remove = element("button", "Delete", { class: "danger" });
    remove.addEventListener("click", async () => {
      if (!confirm(`Delete ${thread.route} thread ${thread.thread} of ${principal}?`)) return;
      await api("DELETE", where).catch(report);
      await showThreads();
    });
    const actions = element("span", null, { class: "actions" });
    actions.append(open, remove);
    return [thread.route, thread.thread, actions];
  }));
}

async function showHistory(where) {
  const thread = await api("GET", where);
  const list = element("ol", null, { class: "messages" });
  thread.messages.forEach((message) => {
    const item = element("li", null, { class: message.type });
    item.append(element("span", message.type, { class: "role" }));
    const content = typeof message.content === "string" ? message.content : JSON.stringify(message.content);
    item.append(element("p", content));
    list.append(item);
  });
  $("history").replaceChildren(element("h3", `${thread.route} / ${thread.thread}`), list);
}

const TABS = { usage: showUsage, keys: showKeys, live: showLive, threads: async () => {} };

function openTab(name) {
  clearInterval(liveTimer);
  document.querySelectorAll(".tab .error").forEach((line) => { line.textContent = ""; });
  document.querySelectorAll("#tabs button").forEach((button) =>
    button.classList.toggle("active", button.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((tab) => { tab.hidden = tab.id !== name; });
  TABS[name]().catch(report);
  if (name === "live") liveTimer = setInterval(() => showLive().catch(report), LIVE_REFRESH_MS);
}

function report(error) {
  if (error instanceof Refused && (error.status === 401 || error.status === 403)) {
    signOut(error.status === 401
      ? `Not signed in: ${error.message}`
      : `This principal does not hold the admin role: ${error.message}`);
    return;
  }
  const target = document.querySelector(".tab:not([hidden]) .error") || $("sign-in-error");
  target.textContent = error.message;
  console.error(error);
}

function signOut(message = "") {
  clearInterval(liveTimer);
  sessionStorage.removeItem(KEY_STORE);
  $("tabs").hidden = $("sign-out").hidden = true;
  document.querySelectorAll(".tab").forEach((tab) => { tab.hidden = true; });
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
}

async function signIn(event) {
  event?.preventDefault();
  const key = $("key").value.trim();
  if (key) sessionStorage.setItem(KEY_STORE, key);
  $("key").value = "";
  try {
    await api("GET", "/admin/live");
  } catch (error) {
    report(error);
    return;
  }
  $("sign-in").hidden = true;
  $("tabs").hidden = $("sign-out").hidden = false;
  openTab("usage");
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("usage-form").addEventListener("submit", (event) => { event.preventDefault(); showUsage().catch(report); });
  $("new-key").addEventListener("submit", (event) => createKey(event).catch(report));
  $("threads-form").addEventListener("submit", (event) => showThreads(event).catch(report));
  document.querySelectorAll("#tabs button").forEach((button) =>
    button.addEventListener("click", () => openTab(button.dataset.tab)));
  if (sessionStorage.getItem(KEY_STORE)) signIn();
});

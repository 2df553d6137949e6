// HotSwap's dashboard: a small single-page app over the REST API and the
// live WebSocket. No framework and no build step: the binary embeds this file.
// Everything the server sends is put into the page as text, never as HTML.

const ENVIRONMENTS = ["Development", "QA", "Staging", "Production"];
const STATUSES = ["Running", "PendingApproval", "Paused", "Succeeded", "Failed", "RolledBack", "Cancelled"];
const ACTIVE = new Set(["Running", "PendingApproval", "Paused"]);
// The server's audit categories, exactly as the audit API names them (src/dashboard/mod.rs checks these
// three lists against the server's own).
const AUDIT_CATEGORIES = ["Deployment", "Approval", "Authentication", "UserManagement", "TenantManagement", "ModuleRegistry", "Security", "Administration"];
/** Runs per page of the runs list, nodes per page of a cluster and in a run's node grid. */
const RUNS_PER_PAGE = 50;
const NODES_PER_PAGE = 100;
const HOSTS_PER_PAGE = 100;
// The newest events a run's page shows.
const EVENTS_SHOWN = 200;
// How often a run's page reads its clusters' grids again while the run goes on.
const GRID_REFRESH_MS = 5000;

// The session lives in this page's memory only: a reload signs out.
const session = { token: null, user: null };

// ---------- small DOM helpers ----------

/** Builds an element; attributes starting with "on" become listeners. */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const svgNs = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(svgNs, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

const main = () => document.getElementById("main");

/** Replaces what `parent` holds; a null, undefined or false part (left out by a role, a link with nowhere
 *  to go) is skipped, where `replaceChildren` itself would write it as the word "null". */
function fill(parent, ...nodes) {
  parent.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));
}

/** Replaces the page's content. */
function show(...nodes) {
  fill(main(), ...nodes);
}

/**
 * Replaces what `region` holds, as `fill` does, for a view that draws it again every few seconds or on every
 * event: the keyboard's focus goes back to the same control in the new content, and text typed into a field
 * stays. Replacing the elements alone threw the focus to the page on every redraw, so a keyboard user could not
 * reach a button further down a table, and a reason half typed was lost.
 */
function refill(region, ...nodes) {
  const focused = document.activeElement;
  const focusKey = focused && focused !== region && region.contains(focused) ? controlKey(focused, region) : null;
  const caret = focusKey && typeof focused.selectionStart === "number" ? [focused.selectionStart, focused.selectionEnd] : null;
  const typed = [...region.querySelectorAll("input, textarea")]
    .filter((field) => field.value !== field.defaultValue)
    .map((field) => [controlKey(field, region), field.value]);
  fill(region, ...nodes);
  if (!focusKey && typed.length === 0) return;
  const controls = [...region.querySelectorAll("a[href], button, input, select, textarea, [tabindex]")];
  const find = (key) => controls.find((control) => controlKey(control, region) === key);
  for (const [key, value] of typed) {
    const field = find(key);
    if (field && field.value === field.defaultValue) field.value = value;
  }
  const again = focusKey && find(focusKey);
  if (!again) return;
  again.focus({ preventScroll: true });
  if (caret) {
    try { again.setSelectionRange(...caret); } catch { /* a field without a caret (a number, a checkbox) */ }
  }
}

/** What names a control from one redraw to the next: the data attributes of the rows around it (not their
 *  status, which a redraw may change) and its own tag, label, name, link and text. */
function controlKey(control, region) {
  const parts = [];
  for (let node = control.parentElement; node && node !== region; node = node.parentElement) {
    const names = Object.entries(node.dataset).filter(([key]) => key !== "status");
    if (names.length) parts.push(names.map(([key, value]) => `${key}=${value}`).join(","));
  }
  parts.push(control.tagName, control.getAttribute("aria-label") ?? "", control.getAttribute("name") ?? "",
    control.getAttribute("href") ?? "", control.textContent.trim());
  return parts.join("|");
}

function notice(text) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.hidden = !text;
  if (text) setTimeout(() => { if (box.textContent === text) box.hidden = true; }, 8000);
}

function hasRole(role) {
  const roles = session.user?.roles ?? [];
  if (roles.includes("Admin")) return true;
  if (role === "Viewer") return roles.length > 0;
  return roles.includes(role);
}

function badge(status) {
  return h("span", { class: `badge status-${String(status).toLowerCase()}` }, status);
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

/** A stable colour class for a version, so that a node grid shows who runs what. */
function versionClass(version) {
  if (!version) return "version-none";
  let hash = 0;
  for (const ch of version) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return `version-${hash % 8}`;
}

/**
 * A duration for people ("24 ms", "1.3 s", "13 s", "2 min 5 s", "1 h 3 min", "2 d 4 h") from the API's
 * TimeSpan ("[d.]hh:mm:ss.fffffff", as the C# original writes it); anything else is shown as it came.
 */
function humanDuration(timespan) {
  const parts = /^(?:(\d+)\.)?(\d+):(\d\d):(\d\d)(?:\.(\d+))?$/.exec(timespan ?? "");
  if (!parts) return timespan ?? "—";
  const [, days = "0", hours, minutes, seconds, fraction = "0"] = parts;
  const whole = ((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60 + Number(seconds);
  const ms = whole * 1000 + Math.floor(Number(`0.${fraction}`) * 1000);
  if (ms < 1000) return `${ms} ms`;
  if (ms < 10_000) return `${Math.floor(ms / 100) / 10} s`;
  const unit = (n, name) => (n ? ` ${n} ${name}` : "");
  if (whole < 60) return `${whole} s`;
  if (whole < 3600) return `${Math.floor(whole / 60)} min${unit(whole % 60, "s")}`;
  if (whole < 86_400) return `${Math.floor(whole / 3600)} h${unit(Math.floor(whole / 60) % 60, "min")}`;
  return `${Math.floor(whole / 86_400)} d${unit(Math.floor(whole / 3600) % 24, "h")}`;
}

function countdown(iso) {
  const left = Math.max(0, new Date(iso).getTime() - Date.now());
  const seconds = Math.floor(left / 1000);
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return `${hours}h ${String(minutes).padStart(2, "0")}m ${String(seconds % 60).padStart(2, "0")}s`;
}

// ---------- the API ----------

class ApiError extends Error {
  constructor(status, body) {
    const message = body?.message ?? `HTTP ${status}`;
    super(body?.traceId ? `${message} (trace ${body.traceId})` : message);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  return (await request(method, path, body)).data;
}

/** The answer's body with its headers (the listings' X-Total-Count). */
async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { message: text }; }
  if (response.status === 401 && session.token) {
    signOut("Your session has ended; sign in again.");
    throw new ApiError(401, data);
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, headers: response.headers };
}

// ---------- live updates ----------

// How long a page whose live connection the server refused (a quota, a suspended tenant) waits before it tries
// again: what refused it changes when someone acts, not within seconds.
const LIVE_REFUSED_RETRY_MS = 60_000;

/** The /api/v1/ws connection: subscribes to every run of the tenant, and
 *  reconnects with a growing delay; after a reconnect the current view
 *  reloads, which catches up on what happened while it was away. */
class Live {
  constructor() {
    this.listeners = new Set();
    this.socket = null;
    this.retry = 0;
    this.stopped = true;
  }
  start() {
    this.stopped = false;
    this.connect();
  }
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close(1000, "signed out");
    this.socket = null;
    this.state("offline");
    this.refused(null);
  }
  /** The label in the header: `text`, styled by `kind`. */
  state(text, kind = text) {
    const label = document.getElementById("live-state");
    label.textContent = text;
    label.className = `live-state live-${kind}`;
  }
  /** Says under the header why the server refuses live updates, or (null) takes that back. */
  refused(why) {
    const banner = document.getElementById("live-problem");
    banner.textContent = why ?? "";
    banner.hidden = !why;
  }
  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // The token rides in a subprotocol, not the URL: browsers print a failed
    // socket's URL in the console, and proxies log URLs.
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws`, ["hotswap.v1", `hotswap.bearer.${session.token}`]);
    this.socket = socket;
    const reconnected = this.retry > 0;
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      socket.send(JSON.stringify({ type: "subscribe", all: true }));
      this.retry = 0;
      this.state("live");
      this.refused(null);
      if (reconnected) route();
    });
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      for (const listener of this.listeners) listener(message);
    });
    socket.addEventListener("close", async (event) => {
      if (this.socket !== socket || this.stopped) return;
      // 1008: the server ended the session (sign-out elsewhere, a password
      // reset, a disabled user, an expired token). Reconnecting with the same
      // token cannot work, and the data on screen is no longer the user's.
      if (event.code === 1008) {
        signOut(`Your session has ended${event.reason ? ` (${event.reason})` : ""}; sign in again.`);
        return;
      }
      this.state("reconnecting");
      // A handshake refused before opening tells the page nothing: it asks why.
      const refusal = opened ? null : await this.whyRefused();
      if (this.socket !== socket || this.stopped) return;
      this.refused(refusal && liveRefusal(refusal));
      if (refusal) this.state("live off", "refused");
      const delay = refusal ? LIVE_REFUSED_RETRY_MS : Math.min(10000, 500 * 2 ** this.retry) * (0.75 + Math.random() / 2);
      this.retry += 1;
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }
  /**
   * The refusal a new live connection gets now (the error's body), or null when none does and the connection
   * failed for another reason. The same request without the upgrade answers with it: a 401 (which signs the
   * page out), a 403 for a suspended tenant or for the tenant's live-session quota.
   */
  async whyRefused() {
    try {
      await request("GET", "/api/v1/ws");
      return null;
    } catch (e) {
      return e.status === 403 ? e.body ?? { message: e.message } : null;
    }
  }
  /** Listens until the view changes. */
  on(listener) {
    this.listeners.add(listener);
    view.cleanups.push(() => this.listeners.delete(listener));
  }
}

/** What the page says when the server refuses its live connection (`body`, the API's 403). */
function liveRefusal(body) {
  const retry = "The page tries again every minute; until then, open a view again to see what changed.";
  if (body.quota === "websocketSessions") {
    return `Live updates are off: your tenant's live sessions are all in use (${body.current} of ${body.limit}, `
      + `its websocketSessions quota). Close another dashboard tab, or ask an administrator for a larger tier. ${retry}`;
  }
  return `Live updates are off: ${body.message ?? "the server refused the live connection"}. ${retry}`;
}

const live = new Live();

// ---------- views ----------

/** What the current view set up and must tear down when the route changes. */
const view = { cleanups: [] };

function every(ms, task) {
  let running = false;
  const id = setInterval(async () => {
    // A slow answer never stacks a second request behind it.
    if (running) return;
    running = true;
    try { await task(); } finally { running = false; }
  }, ms);
  view.cleanups.push(() => clearInterval(id));
}

/** Calls `task` at most once per `ms`, however many events ask for it. */
function coalesce(ms, task) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(async () => {
      timer = null;
      try { await task(); } catch (error) { notice(error.message); }
    }, ms);
  };
}

// What a refused sign-in adds: the server does not say whether an account is locked, nor publish for how long.
const LOCKOUT_HINT = "Several failed sign-ins in a row lock sign-in to an account for a while; until the lock ends, even the right password gets this answer.";

function signInView(message) {
  const error = h("p", { class: "error", role: "alert" }, message ?? "");
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { class: "card sign-in", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in to HotSwap"),
    h("label", { for: "username" }, "Username"), username,
    h("label", { for: "password" }, "Password"), password,
    h("button", { type: "submit" }, "Sign in"),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const answer = await api("POST", "/api/v1/authentication/login", { username: username.value, password: password.value });
      session.token = answer.token;
      session.user = answer.user;
      startSession();
    } catch (e) {
      // The server answers a locked account as it answers a wrong password, the right password included
      // (else a guesser would learn when a guess was right): the page says a lock may be why.
      error.replaceChildren(e.message, ...(e.status === 401 ? [h("br"), h("span", { class: "muted" }, LOCKOUT_HINT)] : []));
    }
  });
  show(form);
  username.focus();
}

/** The query part of the route (`#/runs?status=Failed&page=2`). */
function routeQuery() {
  return new URLSearchParams(location.hash.split("?")[1] ?? "");
}

/** The page number the route asks for: a whole number from 1, else 1. */
function routePage() {
  const page = Number(routeQuery().get("page"));
  return Number.isInteger(page) && page >= 1 ? page : 1;
}

/** A link to the same view with `changes` made to its query (null removes a key). */
function sameViewWith(changes) {
  const [path] = location.hash.split("?");
  const query = routeQuery();
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) query.delete(key);
    else query.set(key, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** "Runs 51–100 of 312", with links to the pages on either side. */
function pager(noun, { page, perPage, total, before, after }) {
  const first = (page - 1) * perPage + 1;
  const last = Math.min(total, page * perPage);
  const where = total === 0 ? `No ${noun.toLowerCase()}` : first > total ? `Past the last page (${total} ${noun.toLowerCase()})`
    : `${noun} ${first.toLocaleString()}–${last.toLocaleString()} of ${total.toLocaleString()}`;
  return h("nav", { class: "pager", "aria-label": `Pages of ${noun.toLowerCase()}` },
    page > 1 ? h("a", { href: sameViewWith({ page: page === 2 ? null : page - 1 }), rel: "prev" }, `← ${before}`) : null,
    h("span", { class: "muted" }, where),
    last < total ? h("a", { href: sameViewWith({ page: page + 1 }), rel: "next" }, `${after} →`) : null);
}

/** The filters of a listing: the route's query, and a form that puts its choices there. */
function filterForm(section, label, fields) {
  const params = routeQuery();
  const select = (name, text, options) => h("label", {}, text,
    h("select", { name }, h("option", { value: "" }, "any"),
      options.map((o) => {
        const [value, text] = Array.isArray(o) ? o : [o, o];
        return h("option", { value, selected: params.get(name) === value }, text);
      })));
  const input = (name, text) => h("label", {}, text, h("input", { name, value: params.get(name) ?? "" }));
  const form = h("form", { class: "filters", "aria-label": label },
    fields.map(([name, text, options]) => (options ? select(name, text, options) : input(name, text))),
    h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) chosen.set(key, value);
    location.hash = `#/${section}?${chosen}`;
  });
  const query = new URLSearchParams();
  for (const [name] of fields) if (params.get(name)) query.set(name, params.get(name));
  return { form, query };
}

async function runsView() {
  const { form: filters, query } = filterForm("runs", "Filter runs",
    [["status", "Status ", STATUSES], ["environment", "Environment ", ENVIRONMENTS], ["moduleName", "Module "]]);
  const page = routePage();
  query.set("page", String(page));
  query.set("pageSize", String(RUNS_PER_PAGE));
  const body = h("tbody");
  const table = h("table", { class: "runs" },
    h("caption", {}, "Runs, newest first"),
    h("thead", {}, h("tr", {}, ["Run", "Module", "Version", "Target", "Status", "Started", "Duration"].map((t) => h("th", { scope: "col" }, t)))),
    body);
  const pages = h("div");
  show(h("h1", {}, "Runs"), filters, table, pages);
  const load = async () => {
    const { data: runs, headers } = await request("GET", `/api/v1/deployments?${query}`);
    const total = Number(headers.get("X-Total-Count") ?? runs.length);
    refill(pages, pager("Runs", { page, perPage: RUNS_PER_PAGE, total, before: "Newer", after: "Older" }));
    refill(body, ...runs.map((run) => h("tr", { "data-run": run.executionId },
      h("td", {}, h("a", { href: `#/runs/${run.executionId}` }, run.executionId.slice(0, 8))),
      h("td", {}, run.moduleName), h("td", {}, run.version), h("td", {}, run.targetEnvironment),
      h("td", { class: "run-status" }, badge(run.status)), h("td", {}, when(run.startTime)),
      h("td", { class: "duration", title: run.duration }, humanDuration(run.duration)))));
    if (runs.length === 0) body.append(h("tr", {}, h("td", { colspan: 7 }, "No runs match.")));
  };
  const refresh = coalesce(300, load);
  live.on((message) => { if (message.type === "DeploymentStatusChanged") refresh(); });
  await load();
}

async function runView(id) {
  const header = h("div", { class: "run-header" });
  const verbs = h("div", { class: "verbs", role: "group", "aria-label": "Actions on this run" });
  const stages = h("ol", { class: "timeline", "aria-label": "Stages" });
  const grids = h("div", { class: "grids" });
  const events = h("ol", { class: "events", "aria-label": "Events" });
  const eventsNote = h("p", { class: "muted" });
  show(header, verbs, h("h2", {}, "Stages"), stages, h("h2", {}, "Nodes"), grids, h("h2", {}, "Events"), events, eventsNote);

  // A verb the server refused (409) for the run as it is now, with its answer: shown in the button's place
  // until the run moves on (a notice fades, and the same click would only be refused again).
  const refusals = new Map();
  let moment = "";
  // A destructive verb asks first: `ask` is its question, and `reason` asks
  // for the reason the server records with it. Cancel sends nothing.
  const act = (label, path, { ask, reason } = {}) => h("button", {
    type: "button",
    "data-verb": label.toLowerCase(),
    onclick: async () => {
      let body;
      if (reason) {
        const given = prompt(`${ask} Why?`);
        if (given === null) return;
        body = { reason: given };
      } else if (ask && !confirm(ask)) {
        return;
      }
      try {
        await api("POST", path, body);
        notice(`${label} accepted`);
      } catch (e) {
        notice(e.message);
        if (e.status !== 409) return;
        refusals.set(label, { message: e.body?.message ?? e.message, moment });
      }
      await load();
    },
  }, label);

  // Per environment: its grid as last read, when, and its stage's and the run's state then.
  const gridReads = new Map();
  let gridTimer = null;
  // Set when the page is left: its timer must not go on reading grids.
  let left = false;
  view.cleanups.push(() => { left = true; clearTimeout(gridTimer); });
  const load = async () => {
    // The run and its events are asked for together and the page is drawn
    // once everything has come, so that its stages, grids and events describe
    // one moment (drawn piece by piece, the stages could still say Pending
    // beside events of stages already finished).
    const [run, { data: history, headers: eventHeaders }] = await Promise.all([
      api("GET", `/api/v1/deployments/${id}`),
      request("GET", `/api/v1/deployments/${id}/events?order=desc&limit=${EVENTS_SHOWN}`),
    ]);
    const eventCount = Number(eventHeaders.get("X-Total-Count") ?? history.length);
    // A grid is read when its stage's status changes (a stage that started,
    // ended or was rolled back has moved nodes), when the run's status or its
    // rollback's changes (a rollback on request puts nodes back but leaves
    // every stage Succeeded) and, while its stage is Running, again every few
    // seconds. Re-reading every environment's grid on every step would spend
    // the clusters' rate limit (60 a minute): a Production run has four, and
    // two such pages open would exceed it.
    const now = Date.now();
    const runState = `${run.status} ${run.rollback?.status ?? ""}`;
    const deployStages = run.stages.filter((stage) => stage.environment);
    const due = deployStages.filter((stage) => {
      const last = gridReads.get(stage.environment);
      if (!last || last.stageStatus !== stage.status || last.runState !== runState) return true;
      return stage.status === "Running" && now - last.readAt >= GRID_REFRESH_MS;
    });
    await Promise.all(due.map(async (stage) => {
      const cluster = await api("GET", `/api/v1/clusters/${stage.environment}?pageSize=${NODES_PER_PAGE}`);
      gridReads.set(stage.environment, { cluster, readAt: now, stageStatus: stage.status, runState });
    }));
    const running = deployStages.filter((stage) => stage.status === "Running");
    if (running.length && ACTIVE.has(run.status) && !gridTimer && !left) {
      // Read once more when the interval is over, even if the run says nothing until then.
      const oldest = Math.min(...running.map((stage) => gridReads.get(stage.environment).readAt));
      gridTimer = setTimeout(() => { gridTimer = null; refresh(); }, Math.max(0, GRID_REFRESH_MS - (now - oldest)));
    }
    const clusters = deployStages.map((stage) => gridReads.get(stage.environment).cluster);
    refill(header,
      h("h1", {}, `${run.moduleName} ${run.version} → ${run.targetEnvironment}`),
      h("p", {}, badge(run.status), " ", run.message ?? "", " ", h("span", { class: "muted" }, `trace ${run.traceId}`)),
      leftBehind(run));
    header.dataset.status = run.status;
    // The verbs the server could accept now (README "Strategies"); one it refuses all the same says why.
    moment = [runState, ...run.stages.map((stage) => stage.status)].join(" ");
    for (const [label, refusal] of refusals) if (refusal.moment !== moment) refusals.delete(label);
    const allowed = [];
    const offer = (label, path, options) => {
      const refusal = refusals.get(label);
      allowed.push(refusal ? h("p", { class: "error refused", "data-verb": label.toLowerCase() }, `${label} refused: ${refusal.message}`)
        : act(label, path, options));
    };
    if (hasRole("Deployer")) {
      if (run.status === "Running") offer("Pause", `/api/v1/deployments/${id}/pause`);
      if (run.status === "Running" && hasWaitToSkip(run)) offer("Promote", `/api/v1/deployments/${id}/promote`);
      if (run.status === "Paused") offer("Resume", `/api/v1/deployments/${id}/resume`);
      if (ACTIVE.has(run.status)) offer("Abort", `/api/v1/deployments/${id}/abort`, { ask: abortQuestion(run) });
      const nothingBack = nothingToRollBack(run, clusters);
      if (nothingBack) allowed.push(h("p", { class: "muted nothing-to-roll-back" }, `Nothing to roll back: ${nothingBack}.`));
      else if (run.status === "Succeeded" || run.status === "Failed") {
        offer("Rollback", `/api/v1/deployments/${id}/rollback`,
          { ask: "Roll back every node this run changed that still runs its version, in every environment, to the version it ran before?", reason: true });
      }
    }
    refill(verbs, ...allowed);
    refill(stages, ...run.stages.map((stage) => h("li", { class: `stage stage-${stage.status.toLowerCase()}` },
      h("strong", {}, stage.name), " ", badge(stage.status),
      stage.strategy ? h("span", { class: "muted" }, ` ${stage.strategy}`) : null,
      stage.nodesDeployed !== null && stage.nodesDeployed !== undefined ? ` · ${stage.nodesDeployed} nodes deployed, ${stage.nodesFailed ?? 0} failed` : null,
      h("div", { class: "muted" }, stage.message || ""))));
    refill(grids, ...clusters.map((cluster) => nodeGrid(cluster, run.moduleName)));
    refill(events, ...history.map((e) => h("li", {},
      h("time", { datetime: e.at }, when(e.at)), " ", h("strong", {}, e.kind), " ", e.message)));
    // A long run has thousands of events: the newest are shown, and the rest counted.
    eventsNote.textContent = eventCount > history.length
      ? `The newest ${history.length} of ${eventCount.toLocaleString()} events; \`hotswap events ${id}\` lists them all.` : "";
  };
  // Listening starts before the first load, so that nothing said in between
  // is missed. A run's events come in bursts: one read a second follows them.
  const refresh = coalesce(1000, load);
  live.on((message) => { if (message.executionId === id) refresh(); });
  await load();
}

/** Whether the run is in a stage whose wait `promote` skips: a Rolling stage's health-check delay or a Canary
 *  stage's bake, under way or next (the server answers 409 in any other stage: Direct, Blue-Green, the scan,
 *  Validation). */
function hasWaitToSkip(run) {
  return run.stages.some((stage) => stage.environment && stage.status === "Running" && ["Rolling", "Canary"].includes(stage.strategy));
}

/** What an abort does, as the server carries it out. */
function abortQuestion(run) {
  if (run.status === "PendingApproval") {
    return "Abort this run? It has changed no node yet: it ends Cancelled, and its approval request is closed.";
  }
  return "Abort this run? It stops, and every node it changed is put back to the version it ran before, in every "
    + "environment, the stages already finished included. It ends Cancelled.";
}

/**
 * Why a rollback of this run would be refused (README "Strategies": one restores every node the run changed that
 * still runs its version), or null where the server may accept one, or has nothing to say. From the run's status,
 * its stages and the grids the page read: a deploy stage still Succeeded (or Failed, or Running, as a run that
 * ended abruptly may leave it) may have left nodes on the version, and so may nodes its restore could not put
 * back; a grid of every node (a cluster of 100 or fewer) shows whether any still runs it.
 */
function nothingToRollBack(run, clusters) {
  if (run.status === "Cancelled") return "its abort put back every node it had changed";
  if (run.status !== "Succeeded" && run.status !== "Failed") return null;
  if (run.rollback?.status === "InProgress") return null;
  const deployStages = run.stages.filter((stage) => stage.environment);
  const mayHoldNodes = (stage) => ["Succeeded", "Failed", "Running"].includes(stage.status);
  if (run.status === "Failed" && !deployStages.some(mayHoldNodes) && !(run.nodesLeftOnNewVersionCount > 0)) {
    return deployStages.some((stage) => stage.status === "RolledBack")
      ? "its own restore put back every node it changed" : "it changed no node";
  }
  const touched = new Set(deployStages.filter((stage) => !["Pending", "Skipped"].includes(stage.status)).map((stage) => stage.environment));
  const seen = clusters.filter((cluster) => touched.has(cluster.environment));
  const wholeGrids = seen.length === touched.size && seen.every((cluster) => cluster.nodes.length >= cluster.totalNodes);
  if (wholeGrids && !seen.some((cluster) => cluster.nodes.some((node) => node.modules?.[run.moduleName] === run.version))) {
    return `no node runs ${run.version} any more (a restore or a later run replaced it)`;
  }
  return null;
}

// The nodes a run could not put back (their restore kept failing): the
// server names the first hundred and counts them all.
function leftBehind(run) {
  const total = run.nodesLeftOnNewVersionCount ?? 0;
  if (total === 0) return "";
  const named = run.nodesLeftOnNewVersion ?? [];
  const more = total - named.length;
  return h("p", { class: "error left-behind", role: "alert" },
    `Left on ${run.version} (restore failed, quarantined): ${total.toLocaleString()} ${total === 1 ? "node" : "nodes"}: `,
    named.join(", "), more > 0 ? ` and ${more.toLocaleString()} more` : "");
}

function nodeGrid(cluster, moduleName) {
  const versions = new Map();
  const cells = cluster.nodes.map((node) => {
    const version = node.modules?.[moduleName] ?? null;
    versions.set(version ?? "none", versionClass(version));
    const label = `${node.hostname}: ${version ?? "not loaded"}, ${node.isHealthy ? "healthy" : "unhealthy"}`;
    return h("li", { class: `node ${versionClass(version)} ${node.isHealthy ? "" : "unhealthy"}`, title: label, "aria-label": label },
      node.isHealthy ? "" : "!");
  });
  return h("section", { class: "grid", "aria-label": `${cluster.environment} nodes` },
    h("h3", {}, `${cluster.environment} (${cluster.healthyNodes}/${cluster.totalNodes} healthy)`),
    h("ul", { class: "nodes" }, cells),
    // A large cluster shows one page of its nodes here; the cluster view pages through all of them.
    cluster.nodes.length < cluster.totalNodes
      ? h("p", { class: "muted" }, `The first ${cluster.nodes.length} of ${cluster.totalNodes.toLocaleString()} nodes; `,
        h("a", { href: `#/clusters/${cluster.environment}` }, `the ${cluster.environment} cluster`), " lists the others.")
      : null,
    h("ul", { class: "legend" }, [...versions].map(([version, cls]) => h("li", {}, h("span", { class: `swatch ${cls}` }), ` ${version}`))));
}

async function approvalsView() {
  const list = h("div", { class: "approvals" });
  show(h("h1", {}, "Approvals waiting"), list);
  const timers = [];
  const load = async () => {
    const pending = await api("GET", "/api/v1/approvals/pending");
    timers.length = 0;
    refill(list, ...pending.map((approval) => {
      const left = h("span", { class: "countdown" }, countdown(approval.timeoutAt));
      timers.push(() => { left.textContent = countdown(approval.timeoutAt); });
      const reason = h("input", { "aria-label": `Reason for ${approval.moduleName} ${approval.version}`, placeholder: "reason" });
      const decide = (verb) => async () => {
        try {
          await api("POST", `/api/v1/approvals/deployments/${approval.deploymentExecutionId}/${verb}`, { reason: reason.value });
          notice(`${approval.moduleName} ${approval.version}: ${verb === "approve" ? "approved" : "rejected"}`);
          await load();
        } catch (e) { notice(e.message); }
      };
      return h("article", { class: "card approval", "data-run": approval.deploymentExecutionId },
        h("h2", {}, h("a", { href: `#/runs/${approval.deploymentExecutionId}` }, `${approval.moduleName} ${approval.version} → ${approval.targetEnvironment}`)),
        h("p", {}, `Requested by ${approval.requesterEmail} at ${when(approval.requestedAt)}; expires in `, left),
        hasRole("Admin") ? h("div", { class: "decide" }, reason,
          h("button", { type: "button", onclick: decide("approve") }, "Approve"),
          h("button", { type: "button", class: "danger", onclick: decide("reject") }, "Reject")) : null);
    }));
    if (pending.length === 0) list.append(h("p", {}, "Nothing waits for approval."));
  };
  const refresh = coalesce(300, load);
  live.on((message) => { if (message.type.startsWith("Approval") || message.type === "DeploymentStatusChanged") refresh(); });
  await load();
  const tick = setInterval(() => timers.forEach((update) => update()), 1000);
  view.cleanups.push(() => clearInterval(tick));
}

async function clustersView(environment) {
  const clusters = await api("GET", "/api/v1/clusters");
  const tabs = h("nav", { class: "tabs", "aria-label": "Environments" },
    clusters.map((c) => h("a", { href: `#/clusters/${c.environment}`, "aria-current": c.environment === environment ? "page" : false },
      `${c.environment} ${c.healthyNodes}/${c.totalNodes}`)));
  if (!environment) {
    show(h("h1", {}, "Clusters"), tabs, h("table", {},
      h("thead", {}, h("tr", {}, ["Environment", "Nodes", "Healthy", "State"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, clusters.map((c) => h("tr", {},
        h("td", {}, h("a", { href: `#/clusters/${c.environment}` }, c.environment)),
        h("td", {}, c.totalNodes), h("td", {}, c.healthyNodes), h("td", {}, badge(c.isHealthy ? "Healthy" : "Degraded")))))));
    return;
  }
  const { form: filters, query } = filterForm(`clusters/${environment}`, "Filter the nodes",
    [["healthy", "Health ", [["true", "healthy"], ["false", "unhealthy"]]], ["module", "Module "], ["version", "Version "]]);
  const page = routePage();
  query.set("page", String(page));
  query.set("pageSize", String(NODES_PER_PAGE));
  const { data: detail, headers } = await request("GET", `/api/v1/clusters/${environment}?${query}`);
  const matching = Number(headers.get("X-Total-Count") ?? detail.nodes.length);
  const series = await api("GET", `/api/v1/clusters/${environment}/metrics?interval=1m`);
  // What a node says about itself beyond its health: why it is unhealthy, and
  // how an agent's host differs from what runs set on it.
  const notes = (n) => [
    ...(n.healthMessages ?? []),
    ...Object.entries(n.drift ?? {}).map(([module, what]) => `drift in ${module}: ${what}`),
  ].join("; ");
  show(h("h1", {}, `${environment} cluster`), tabs,
    h("h2", {}, "Metrics history"), chart(series.dataPoints),
    h("h2", {}, "Nodes"), filters,
    h("table", { class: "cluster-nodes" },
      h("thead", {}, h("tr", {}, ["Host", "Kind", "Health", "Modules", "CPU %", "Error %", "Last heartbeat", "Notes"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, detail.nodes.map((n) => h("tr", { "data-node": n.nodeId },
        h("td", {}, n.hostname), h("td", {}, n.kind),
        h("td", {}, badge(n.isHealthy ? "Healthy" : "Unhealthy"), n.status === "Unreachable" ? " Unreachable" : ""),
        h("td", {}, Object.entries(n.modules ?? {}).map(([m, v]) => `${m} ${v}`).join(", ") || "—"),
        h("td", {}, n.metrics?.cpuUsage?.toFixed(1) ?? "—"), h("td", {}, n.metrics?.errorRate?.toFixed(2) ?? "—"),
        h("td", {}, when(n.lastHeartbeat)), h("td", { class: "muted" }, notes(n)))))),
    pager("Nodes", { page, perPage: NODES_PER_PAGE, total: matching, before: "Previous", after: "Next" }));
}

/** CPU and error rate over time as two lines, drawn as SVG, with the latest
 *  values and the time span in words (the lines alone carry no scale). */
function chart(points) {
  if (!points?.length) return h("p", { class: "muted" }, "No samples recorded in the last hour yet.");
  const width = 640, height = 160, pad = 24;
  const times = points.map((p) => new Date(p.timestamp).getTime());
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 1);
  const x = (i) => pad + ((times[i] - t0) / (t1 - t0)) * (width - 2 * pad);
  const y = (v, max) => height - pad - (v / max) * (height - 2 * pad);
  const cpu = points.map((p) => p.cpuUsage);
  const errors = points.map((p) => p.errorRate);
  const errorScale = Math.max(5, ...errors);
  const series = (values, max, cls) => points.length > 1
    ? [s("polyline", { points: values.map((v, i) => `${x(i).toFixed(1)},${y(v, max).toFixed(1)}`).join(" "), class: cls, fill: "none" })]
    // One sample draws no line: a dot says where it is.
    : [s("circle", { cx: x(0).toFixed(1), cy: y(values[0], max).toFixed(1), r: 4, class: `${cls}-dot` })];
  const clock = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const span = points.length > 1 ? `${points.length} one-minute averages from ${clock(t0)} to ${clock(t1)}` : `one one-minute average so far, at ${clock(t0)}`;
  return h("figure", { class: "chart" },
    s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "CPU and error rate over the last hour" },
      ...series(cpu, 100, "series-cpu"), ...series(errors, errorScale, "series-errors")),
    h("figcaption", {},
      h("span", { class: "swatch series-cpu-swatch" }), ` CPU % (latest ${cpu.at(-1).toFixed(1)}, scale 0–100) `,
      h("span", { class: "swatch series-errors-swatch" }), ` error rate % (latest ${errors.at(-1).toFixed(2)}, scale 0–${errorScale.toFixed(1)})`,
      h("br"), h("span", { class: "muted" }, span)));
}

async function actorsView() {
  const tree = h("div", { class: "tree" });
  show(h("h1", {}, "Supervision tree"), tree);
  const load = async () => {
    const answer = await api("GET", "/api/v1/admin/actors");
    refill(tree, ...answer.supervisors.map((supervisor) => h("section", { class: "supervisor" },
      h("h2", {}, `${supervisor.name} (${supervisor.childCount})`),
      supervisor.children.length < supervisor.childCount
        ? h("p", { class: "muted" }, `The first ${supervisor.children.length} of ${supervisor.childCount}: restarted or stopped actors first, then by id.`)
        : "",
      h("table", {},
        h("thead", {}, h("tr", {}, ["Actor", "Kind", "State", "Restarts", "Incarnation", "Last failure", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, supervisor.children.map((child) => h("tr", { "data-actor": child.id },
          h("td", {}, child.id), h("td", {}, child.kind), h("td", {}, badge(child.state)),
          h("td", { class: "restarts" }, child.restarts), h("td", {}, child.incarnation),
          h("td", { class: "failure" }, child.lastFailure ?? ""),
          h("td", {}, child.controllable ? h("button", {
            type: "button",
            class: "danger",
            "aria-label": `Crash ${child.id}`,
            onclick: async () => {
              try { await api("POST", `/api/v1/admin/actors/${encodeURIComponent(child.id)}/crash`); notice(`${child.id} crashed on request`); await load(); } catch (e) { notice(e.message); }
            },
          }, "Crash") : ""))))))));
  };
  await load();
  every(2000, load);
}

async function auditView() {
  const { form: filters, query } = filterForm("audit", "Filter the audit trail",
    [["category", "Category ", AUDIT_CATEGORIES], ["eventType", "Event type "], ["actor", "Actor "]]);
  query.set("limit", "100");
  // Cursor paging: `cursor` is the previous page's nextCursor, so a page
  // stays the same while new entries arrive above it.
  const cursor = routeQuery().get("cursor");
  if (/^[1-9][0-9]*$/.test(cursor ?? "")) query.set("cursor", cursor);
  const page = await api("GET", `/api/v1/auditlogs?${query}`);
  const pages = h("nav", { class: "pager", "aria-label": "Pages of the audit trail" },
    query.has("cursor") ? h("a", { href: sameViewWith({ cursor: null }), rel: "first" }, "← Newest") : null,
    h("span", { class: "muted" }, `${page.total.toLocaleString()} ${page.total === 1 ? "entry matches" : "entries match"}${query.has("cursor") ? "; older ones" : ""}`),
    page.nextCursor ? h("a", { href: sameViewWith({ cursor: page.nextCursor }), rel: "next" }, "Older →") : null);
  show(h("h1", {}, "Audit trail"), filters, h("table", { class: "audit" },
    h("thead", {}, h("tr", {}, ["When", "Category", "Event", "Actor", "Result", "Message"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, page.items.map((entry) => h("tr", { "data-entry": entry.id },
      h("td", {}, when(entry.at)), h("td", {}, entry.category), h("td", {}, entry.eventType),
      h("td", {}, entry.actor?.name ?? ""), h("td", {}, entry.result), h("td", {}, entry.message))))), pages);
}

function deployView() {
  const field = (label, input) => h("div", { class: "field" }, h("label", { for: input.id }, label), input);
  // The server's rule for module names, so that the browser says it first.
  const module = h("input", {
    id: "deploy-module", required: true, pattern: "[a-z0-9][a-z0-9\\-]{1,62}[a-z0-9]",
    title: "3-64 lowercase letters, digits or hyphens, starting and ending with a letter or digit",
  });
  const version = h("input", { id: "deploy-version", required: true, placeholder: "1.2.0" });
  const target = h("select", { id: "deploy-target" }, ENVIRONMENTS.map((e) => h("option", { value: e }, e)));
  const description = h("input", { id: "deploy-description" });
  const approval = h("input", { id: "deploy-approval", type: "checkbox" });
  // A version below one the tenant's nodes run is refused (422) unless asked for; the server audits it.
  const downgrade = h("input", { id: "deploy-downgrade", type: "checkbox" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card deploy" },
    h("h1", {}, "Start a run"),
    field("Module", module), field("Version", version), field("Target environment", target),
    field("Description", description),
    h("div", { class: "field checkbox" }, approval, h("label", { for: "deploy-approval" }, "Require approval (a run to Staging or Production waits for an Admin)")),
    h("div", { class: "field checkbox" }, downgrade, h("label", { for: "deploy-downgrade" }, "Allow a downgrade (audited)")),
    h("button", { type: "submit" }, "Deploy"), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const answer = await api("POST", "/api/v1/deployments", {
        moduleName: module.value.trim(),
        version: version.value.trim(),
        targetEnvironment: target.value,
        requesterEmail: session.user.email,
        description: description.value || undefined,
        requireApproval: approval.checked,
        allowDowngrade: downgrade.checked || undefined,
      });
      location.hash = `#/runs/${answer.executionId}`;
    } catch (e) {
      // The API's refusal names its field; here it is the checkbox.
      error.textContent = e.status === 422 && !downgrade.checked
        ? e.message.replace("; send allowDowngrade: true to deploy it anyway", "; tick “Allow a downgrade” to deploy it anyway")
        : e.message;
    }
  });
  show(form);
}

/** "a, b, c and 7 more": a few names of a list that may be long. */
/** The first `few` names and how many more of `total` there are (the server may list only some). */
function someOf(names, few = 3, total = names.length) {
  const shown = names.slice(0, few);
  if (total <= shown.length) return shown.join(", ");
  return `${shown.join(", ")} and ${(total - shown.length).toLocaleString()} more`;
}

/** The hosts that run `hotswap agent`; Admins make enrolment tokens for new ones here. */
async function hostsView() {
  const body = h("tbody");
  const admin = hasRole("Admin");
  const table = h("table", { class: "hosts" },
    h("thead", {}, h("tr", {}, ["Host", "Environment", "Connection", "Last heartbeat", "Agent", "Address", "Labels", "Modules", ...(admin ? [""] : [])]
      .map((t) => h("th", { scope: "col" }, t)))),
    body);
  // Retiring a host takes its node out of the cluster for good (the server refuses while a run may reach it).
  const remove = (agent) => async () => {
    if (!confirm(`Remove ${agent.hostname}? Its node leaves the ${agent.environment} cluster; enrolling it again needs a new token.`)) return;
    try {
      await api("DELETE", `/api/v1/agents/${agent.nodeId}`);
      notice(`${agent.hostname} removed`);
      await load();
    } catch (e) { notice(e.message); }
  };
  const { form: filters, query } = filterForm("hosts", "Filter hosts",
    [["environment", "Environment ", ENVIRONMENTS], ["connected", "Connection ", [["true", "Connected"], ["false", "Disconnected"]]]]);
  const page = routePage();
  query.set("page", String(page));
  query.set("pageSize", String(HOSTS_PER_PAGE));
  const filtered = query.has("environment") || query.has("connected");
  const empty = h("p", { class: "muted" });
  const pages = h("div");
  const load = async () => {
    const { data: agents, headers } = await request("GET", `/api/v1/agents?${query}`);
    const total = Number(headers.get("X-Total-Count") ?? agents.length);
    refill(pages, pager("Hosts", { page, perPage: HOSTS_PER_PAGE, total, before: "Previous", after: "Next" }));
    empty.textContent = agents.length || total ? "" : filtered ? "No host matches."
      : "No host has enrolled yet: make a token, then start `hotswap agent` with it on the host.";
    refill(body, ...agents.map((a) => h("tr", { "data-host": a.hostname },
      h("td", {}, a.hostname), h("td", {}, a.environment),
      h("td", {}, badge(a.connected ? "Connected" : "Disconnected"),
        a.connected ? h("span", { class: "muted" }, ` since ${when(a.connectedSince)}${a.instance ? ` on ${a.instance}` : ""}`) : ""),
      h("td", {}, when(a.lastHeartbeat)), h("td", {}, a.agentVersion), h("td", {}, a.address ?? "—"),
      h("td", {}, Object.entries(a.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—"),
      h("td", {}, Object.entries(a.modules ?? {}).map(([name, slots]) => [
        slots.active ? `${name} ${slots.active.version}` : `${name} (none active)`,
        slots.standby ? ` (standby ${slots.standby.version})` : "",
      ].join("")).join(", ") || "—"),
      admin ? h("td", {}, h("button", { type: "button", class: "danger", "aria-label": `Remove ${a.hostname}`, onclick: remove(a) }, "Remove")) : null)));
  };
  show(h("h1", {}, "Hosts"), hasRole("Admin") ? enrolmentForm() : "", filters, table, empty, pages);
  await load();
  every(5000, load);
}

/** Makes an enrolment token and shows it once, with the command that starts an agent. */
function enrolmentForm() {
  const environment = h("select", { id: "enrol-environment" }, ENVIRONMENTS.map((e) => h("option", { value: e }, e)));
  const labels = h("input", { id: "enrol-labels", placeholder: "rack=r7, zone=a" });
  const minutes = h("input", { id: "enrol-minutes", type: "number", min: 1, step: 1, placeholder: "server default" });
  const result = h("div", { class: "enrolment", "aria-live": "polite" });
  const form = h("form", { class: "card enrol" },
    h("h2", {}, "Enrol hosts"),
    h("div", { class: "field" }, h("label", { for: "enrol-environment" }, "Environment"), environment),
    h("div", { class: "field" }, h("label", { for: "enrol-labels" }, "Labels (key=value, comma separated)"), labels),
    h("div", { class: "field" }, h("label", { for: "enrol-minutes" }, "Valid for (minutes)"), minutes),
    h("button", { type: "submit" }, "Make a token"), result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.replaceChildren();
    const pairs = labels.value.split(",").map((p) => p.trim()).filter(Boolean);
    const bad = pairs.find((p) => !/^[^=]+=.*$/.test(p));
    if (bad) {
      result.append(h("p", { class: "error", role: "alert" }, `"${bad}" is not key=value`));
      return;
    }
    const body = { environment: environment.value, labels: Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf("=")).trim(), p.slice(p.indexOf("=") + 1).trim()])) };
    if (minutes.value) body.expiresIn = Number(minutes.value) * 60;
    try {
      const made = await api("POST", "/api/v1/agents/tokens", body);
      const command = `hotswap agent --server ${location.origin} --token ${made.token} --data-dir /var/lib/hotswap-agent`;
      result.append(
        h("p", {}, `A token for ${environment.value}, usable until ${when(made.expiresAt)}. It is shown this once; on each host run:`),
        h("pre", { class: "command" }, h("code", {}, command)));
    } catch (e) {
      result.append(h("p", { class: "error", role: "alert" }, e.message));
    }
  });
  return form;
}

/** The registry: modules and their versions, and the keys signatures are checked against. */
async function modulesView(name, version) {
  if (name) return moduleView(name, version);
  const [modules, keys] = await Promise.all([api("GET", "/api/v1/modules"), api("GET", "/api/v1/signing-keys")]);
  show(h("h1", {}, "Modules"),
    modules.length ? h("table", { class: "modules" },
      h("thead", {}, h("tr", {}, ["Module", "Latest version", "Versions", "Updated", "Description"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, modules.map((m) => h("tr", { "data-module": m.name },
        h("td", {}, h("a", { href: `#/modules/${encodeURIComponent(m.name)}` }, m.name)), h("td", {}, m.latestVersion),
        h("td", {}, m.versionCount), h("td", {}, when(m.updatedAt)), h("td", {}, m.description)))))
      : h("p", { class: "muted" }, "No module is registered yet: `hotswap module push` uploads one."),
    signingKeys(keys));
}

/** One module's versions, and the impact of releasing one of them (the latest unless chosen). */
async function moduleView(name, version) {
  const [module, keys] = await Promise.all([api("GET", `/api/v1/modules/${encodeURIComponent(name)}`), api("GET", "/api/v1/signing-keys")]);
  // The API lists versions newest first.
  const chosen = version ?? module.versions[0]?.version;
  const versionLink = (v) => h("a", { href: `#/modules/${encodeURIComponent(module.name)}/${encodeURIComponent(v)}`,
    "aria-current": v === chosen ? "page" : false, title: `The impact of releasing ${v}` }, v);
  show(h("p", {}, h("a", { href: "#/modules" }, "← Modules")), h("h1", {}, `Module ${module.name}`),
    h("table", { class: "versions" },
      h("thead", {}, h("tr", {}, ["Version", "Signature", "SHA-256", "Size", "Uploaded", "Depends on", "Running on"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, module.versions.map((v) => h("tr", { "data-version": v.version },
        h("td", {}, versionLink(v.version)),
        h("td", { class: "signature" }, signature(v, keys)),
        h("td", { class: "digest", title: v.sha256 }, `${v.sha256.slice(0, 12)}…`),
        h("td", {}, `${v.sizeBytes.toLocaleString()} B`),
        h("td", {}, `${when(v.uploadedAt)}${v.uploadedBy ? ` by ${v.uploadedBy}` : ""}`),
        h("td", {}, Object.entries(v.dependencies ?? {}).map(([d, req]) => `${d} ${req}`).join(", ") || "—"),
        h("td", {}, v.deployedTo.map((d) => `${d.environment}: ${d.nodeCount.toLocaleString()} (${someOf(d.nodes, 3, d.nodeCount)})`).join("; ") || "—"))))),
    ...(chosen ? [await impactSection(module.name, chosen)] : []));
}

/**
 * A version's signature as the server checks it now (`signatureStatus`, docs/REGISTRY_AND_SECRETS.md): Verified
 * against a trusted key, Unverified (signed, but by no trusted key, or by one revoked since: possibly altered
 * bytes or a rogue key, which must not look like no signature at all), or Unsigned; with the key and the reason.
 */
function signature(version, keys) {
  const key = keys.find((k) => k.id === version.signingKeyId);
  const keyName = (k) => h("span", { title: k.fingerprint }, k.name);
  switch (version.signatureStatus) {
    case "verified":
      return [badge("Verified"), " ", key ? keyName(key) : h("span", { class: "digest", title: version.signingKeyId }, `${version.signingKeyId?.slice(0, 19)}…`)];
    case "unverified": {
      const why = !version.signingKeyId ? ["signed by no trusted key (let in with strict mode off)"]
        : !key ? ["its key is no longer among the trusted keys"]
          : key.revoked ? ["its key ", keyName(key), ` was revoked ${when(key.revokedAt)}`]
            : ["it does not verify against its key ", keyName(key)];
      return [badge("Unverified"), " ", h("span", { class: "muted why" }, ...why)];
    }
    default:
      return badge("Unsigned");
  }
}

/**
 * What the knowledge graph says about releasing `version` of a module: the modules that depend on it,
 * whether this version meets each one's requirement, and what it would break on nodes running both.
 * Any semantic version may be checked, uploaded or not, before anyone builds it.
 */
async function impactSection(name, version) {
  const section = h("section", { class: "impact" }, h("h2", {}, `Impact of ${version}`));
  const other = h("input", { id: "impact-version", required: true, maxlength: 64, placeholder: "2.0.0" });
  const form = h("form", { class: "filters" },
    h("label", { for: "impact-version" }, "Check another version", other), h("button", { type: "submit" }, "Check"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/modules/${encodeURIComponent(name)}/${encodeURIComponent(other.value.trim())}`;
  });
  let report;
  try {
    report = await api("GET", `/api/v1/graph/impact?module=${encodeURIComponent(name)}&version=${encodeURIComponent(version)}`);
  } catch (e) {
    section.append(h("p", { class: "error" }, e.message), form);
    return section;
  }
  const plural = (n, one) => `${n.toLocaleString()} ${one}${n === 1 ? "" : "s"}`;
  section.append(h("p", {}, `${plural(report.dependents.length, "dependent")}, running on ${plural(report.nodesTotal, "node")} `
    + `in ${plural(report.clusters.length, "cluster")}.`));
  if (report.dependents.length) {
    const meets = (d) => d.satisfied === true ? "Yes" : d.satisfied === false ? h("strong", { class: "error" }, "No") : "—";
    section.append(h("table", { class: "dependents" },
      h("thead", {}, h("tr", {}, ["Dependent", "Version", "Requires", "Depth", "Meets it", "Nodes running it"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, report.dependents.map((d) => h("tr", { "data-dependent": `${d.module} ${d.version}` },
        h("td", {}, h("a", { href: `#/modules/${encodeURIComponent(d.module)}` }, d.module)), h("td", {}, d.version),
        h("td", {}, `${d.dependsOn} ${d.requirement}`), h("td", {}, d.depth), h("td", {}, meets(d)),
        h("td", {}, d.runningNodes.toLocaleString()))))));
  }
  // One conflict per broken dependent version, each naming a few nodes; many versions show the first ten.
  const shown = report.conflicts.slice(0, 10);
  const more = report.conflicts.length - shown.length;
  section.append(report.conflicts.length
    ? h("div", { class: "conflicts", role: "alert" }, h("p", { class: "error" }, `Releasing ${version} would break:`),
      h("ul", {}, shown.map((c) => h("li", {}, c)), more > 0 ? h("li", { class: "muted" }, `and ${more.toLocaleString()} more`) : null))
    : h("p", { class: "no-conflicts" }, `Nothing running depends on ${name} in a way ${version} would break.`));
  section.append(form);
  return section;
}

/** The trusted keys; Admins add and revoke them. */
function signingKeys(keys) {
  const section = h("section", { class: "signing-keys" }, h("h2", {}, "Signing keys"));
  const revoke = (key) => async () => {
    if (!confirm(`Revoke ${key.name}? Agents no longer accept modules signed with it, and the Security Scan refuses them in strict mode (with strict mode off they pass with a warning).`)) return;
    try {
      await api("POST", `/api/v1/signing-keys/${encodeURIComponent(key.id)}/revoke`, {});
      notice(`${key.name} revoked`);
      await route();
    } catch (e) { notice(e.message); }
  };
  section.append(keys.length ? h("table", {},
    h("thead", {}, h("tr", {}, ["Name", "Fingerprint", "Key", "Added", "Revoked", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, keys.map((k) => h("tr", { "data-key": k.name },
      h("td", {}, k.name), h("td", { class: "digest" }, k.fingerprint), h("td", {}, `RSA-${k.bits}`), h("td", {}, when(k.createdAt)),
      h("td", {}, k.revoked ? when(k.revokedAt) : "—"),
      h("td", {}, hasRole("Admin") && !k.revoked ? h("button", { type: "button", class: "danger", "aria-label": `Revoke ${k.name}`, onclick: revoke(k) }, "Revoke") : "")))))
    : h("p", { class: "muted" }, "No key is trusted yet: `hotswap keygen` makes one and `hotswap keys add` trusts it."));
  if (hasRole("Admin")) section.append(addKeyForm());
  return section;
}

function addKeyForm() {
  const name = h("input", { id: "key-name", required: true, maxlength: 100 });
  const pem = h("textarea", { id: "key-pem", required: true, rows: 6, placeholder: "-----BEGIN PUBLIC KEY-----" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card add-key" },
    h("h3", {}, "Trust a key"),
    h("div", { class: "field" }, h("label", { for: "key-name" }, "Name"), name),
    h("div", { class: "field" }, h("label", { for: "key-pem" }, "Public key (PEM)"), pem),
    h("button", { type: "submit" }, "Trust"), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    if (pem.value.includes("PRIVATE KEY")) {
      error.textContent = "That is a private key: paste the public one (the .pub file `hotswap keygen` wrote).";
      return;
    }
    try {
      const added = await api("POST", "/api/v1/signing-keys", { name: name.value.trim(), publicKeyPem: pem.value });
      notice(`${added.name} trusted: ${added.fingerprint}`);
      await route();
    } catch (e) { error.textContent = e.message; }
  });
  return form;
}

const RELEASES_PER_PAGE = 50;

/**
 * Deployment batches (`hotswap release`): each module version of a batch with its step's status and run,
 * newest batch first, a page at a time (`before` is the last batch of the newer page). Run events refresh
 * the list, and a slow poll catches a step that starts between them.
 */
async function releasesView() {
  const body = h("tbody");
  const empty = h("p", { class: "muted" });
  const pages = h("nav", { class: "pager", "aria-label": "Pages of releases" });
  const query = new URLSearchParams({ limit: String(RELEASES_PER_PAGE) });
  const before = routeQuery().get("before");
  if (/^[0-9a-f-]{36}$/i.test(before ?? "")) query.set("before", before);
  const load = async () => {
    const batches = await api("GET", `/api/v1/deployments/batch?${query}`);
    empty.textContent = batches.length ? ""
      : query.has("before") ? "No older release." : "No release yet: `hotswap release MODULE@VERSION… --to ENV` starts one.";
    const last = batches.length === RELEASES_PER_PAGE ? batches[batches.length - 1] : null;
    refill(pages,
      query.has("before") ? h("a", { href: sameViewWith({ before: null }), rel: "first" }, "← Newest") : null,
      last ? h("a", { href: sameViewWith({ before: last.batchId }), rel: "next" }, "Older →") : null);
    refill(body, ...batches.map((b) => h("tr", { "data-batch": b.batchId, "data-status": b.status },
      h("td", { class: "digest", title: b.batchId }, b.batchId.slice(0, 8)),
      h("td", {}, badge(b.status), b.message ? h("div", { class: "muted" }, b.message) : null),
      h("td", {}, b.targetEnvironment),
      h("td", {}, h("ol", { class: "steps" }, b.steps.map((s) => h("li", { "data-step": s.module },
        `${s.module} ${s.version} `, badge(s.status),
        s.executionId ? [" ", h("a", { href: `#/runs/${s.executionId}`, "aria-label": `Run of ${s.module} ${s.version}` }, "run")] : null)))),
      h("td", {}, when(b.createdAt)))));
  };
  show(h("h1", {}, "Releases"),
    h("p", { class: "muted" }, "Module versions released together, each after the modules it depends on."),
    hasRole("Deployer") ? releaseForm(load) : null,
    h("table", { class: "releases" },
      h("thead", {}, h("tr", {}, ["Batch", "Status", "To", "Module versions, in order", "Created"].map((t) => h("th", { scope: "col" }, t)))),
      body),
    empty, pages);
  const refresh = coalesce(300, load);
  live.on((message) => { if (message.type === "DeploymentStatusChanged") refresh(); });
  await load();
  every(5000, load);
}

/** Deployers start a release: MODULE@VERSION items in any order (the server orders them) and a target. */
function releaseForm(reload) {
  const items = h("input", { id: "release-items", required: true, placeholder: "kbase@1.2.0 netx@2.0.0" });
  const target = h("select", { id: "release-target" }, ENVIRONMENTS.map((e) => h("option", { value: e }, e)));
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "filters release" },
    h("label", { for: "release-items" }, "Module versions (MODULE@VERSION, any order)", items),
    h("label", { for: "release-target" }, "Target environment", target),
    h("button", { type: "submit" }, "Release"), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const modules = [];
    for (const item of items.value.split(/[\s,]+/).filter(Boolean)) {
      const at = item.lastIndexOf("@");
      if (at <= 0 || at === item.length - 1) {
        error.textContent = `'${item}' is not MODULE@VERSION`;
        return;
      }
      modules.push({ module: item.slice(0, at), version: item.slice(at + 1) });
    }
    try {
      const batch = await api("POST", "/api/v1/deployments/batch",
        { modules, targetEnvironment: target.value, requesterEmail: session.user.email });
      notice(`Release ${batch.batchId.slice(0, 8)} started: ${batch.steps.map((s) => s.module).join(" → ")}`);
      items.value = "";
      await reload();
    } catch (e) {
      error.textContent = e.message;
    }
  });
  return form;
}

/** The message bus: each topic with its counters; one topic's subscriptions and dead letters. */
async function messagingView(name) {
  if (name) return topicView(name);
  const body = h("tbody");
  const empty = h("p", { class: "muted" });
  const load = async () => {
    // One request for every topic's counters, not one per topic every few seconds.
    const topics = await api("GET", "/api/v1/topics?include=metrics");
    empty.textContent = topics.length ? "" : "No topic yet: `hotswap topics create NAME` makes one.";
    refill(body, ...topics.map((t) => {
      const m = t.metrics;
      return h("tr", { "data-topic": t.name },
        h("td", {}, h("a", { href: `#/messaging/${encodeURIComponent(t.name)}` }, t.name)),
        h("td", {}, t.type), h("td", {}, t.effectiveRoutingStrategy), h("td", {}, t.deliveryGuarantee),
        h("td", { class: "published" }, m.published), h("td", { class: "waiting" }, waiting(m)),
        h("td", { class: "dead-lettered" }, m.deadLettered), h("td", {}, age(m.oldestUnackedAgeMs)));
    }));
  };
  show(h("h1", {}, "Messaging"),
    h("table", { class: "topics" },
      h("thead", {}, h("tr", {}, ["Topic", "Type", "Routing", "Guarantee", "Published", "Waiting", "Dead letters", "Oldest unacknowledged"]
        .map((t) => h("th", { scope: "col" }, t)))),
      body),
    empty);
  await load();
  every(5000, load);
}

/** Messages queued or leased over every subscription of a topic. */
function waiting(metrics) {
  return Object.values(metrics.depth ?? {}).reduce((sum, n) => sum + n, 0);
}

function age(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return "under a second";
  const seconds = Math.floor(ms / 1000);
  return seconds < 120 ? `${seconds} s` : `${Math.floor(seconds / 60)} min`;
}

const LETTERS_SHOWN = 100;

async function topicView(name) {
  const path = `/api/v1/topics/${encodeURIComponent(name)}`;
  const [topic, metrics, subscriptions, { data: letters, headers: letterHeaders }] = await Promise.all([
    api("GET", path), api("GET", `${path}/metrics`),
    api("GET", `/api/v1/subscriptions?topicName=${encodeURIComponent(name)}`), request("GET", `${path}/dlq?limit=${LETTERS_SHOWN}`)]);
  const lettersTotal = Number(letterHeaders.get("X-Total-Count") ?? letters.length);
  const deployer = hasRole("Deployer");
  const act = (method, url, done) => async () => {
    try {
      await api(method, url, {});
      notice(done);
      await route();
    } catch (e) { notice(e.message); }
  };
  const groups = Object.fromEntries(subscriptions.map((s) => [s.subscriptionId, s.consumerGroup]));
  show(h("p", {}, h("a", { href: "#/messaging" }, "← Messaging")), h("h1", {}, `Topic ${topic.name}`),
    h("p", {}, `${topic.type}, ${topic.deliveryGuarantee}, routed ${topic.effectiveRoutingStrategy}, ${topic.partitionCount} partition(s), kept ${topic.retentionPeriod}`,
      topic.config?.ordered ? ", ordered" : "", topic.schemaId ? `; messages must match schema ${topic.schemaId}` : ""),
    h("p", { class: "counters" }, ["published", "delivered", "acknowledged", "failed", "deadLettered", "unrouted"]
      .map((c) => `${metrics[c]} ${c.replace(/[A-Z]/g, (l) => ` ${l.toLowerCase()}`)}`).join(", ")),
    h("h2", {}, "Subscriptions"),
    subscriptions.length ? h("table", { class: "subscriptions" },
      h("thead", {}, h("tr", {}, ["Consumer group", "Type", "State", "Waiting", "Retries", "Ack timeout", "Endpoint", ...(deployer ? [""] : [])]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, subscriptions.map((s) => h("tr", { "data-subscription": s.consumerGroup },
        h("td", {}, s.consumerGroup), h("td", {}, s.type), h("td", {}, badge(s.paused ? "Paused" : "Active")),
        h("td", { class: "waiting" }, metrics.depth?.[s.subscriptionId] ?? 0), h("td", {}, s.maxRetries), h("td", {}, s.ackTimeout),
        h("td", {}, s.consumerEndpoint || "—"),
        deployer ? h("td", {}, h("button", {
          type: "button", "aria-label": `${s.paused ? "Resume" : "Pause"} ${s.consumerGroup}`,
          onclick: act("POST", `/api/v1/subscriptions/${s.subscriptionId}/${s.paused ? "resume" : "pause"}`, `${s.consumerGroup} ${s.paused ? "resumed" : "paused"}`),
        }, s.paused ? "Resume" : "Pause")) : null))))
      : h("p", { class: "muted" }, "No subscription: `hotswap subscriptions create` adds one."),
    h("h2", {}, "Dead letters"),
    letters.length ? h("table", { class: "dead-letters" },
      h("thead", {}, h("tr", {}, ["Message", "Subscription", "Attempts", "Dead-lettered", "Reason", "Payload", ...(deployer ? [""] : [])]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, letters.map((d) => h("tr", { "data-message": d.messageId },
        h("td", { class: "digest" }, d.messageId), h("td", {}, groups[d.subscriptionId] ?? d.subscriptionId), h("td", {}, d.deliveryAttempts),
        h("td", {}, when(d.deadLetteredAt)), h("td", {}, d.reason),
        h("td", { class: "payload", title: d.payload }, d.payload.length > 60 ? `${d.payload.slice(0, 60)}…` : d.payload),
        deployer ? h("td", {}, h("button", {
          type: "button", "aria-label": `Replay ${d.messageId}`,
          onclick: act("POST", `${path}/dlq/${encodeURIComponent(d.messageId)}/replay`, `${d.messageId} delivered again`),
        }, "Replay")) : null))))
      : h("p", { class: "muted" }, "No dead letters."),
    lettersTotal > letters.length
      ? h("p", { class: "muted more-letters" }, `The oldest ${letters.length} of ${lettersTotal.toLocaleString()} dead letters; `
        + "replaying them shows the next, and `hotswap topics dlq --page` lists any page.")
      : null);
}

// ---------- routing ----------

async function route() {
  for (const cleanup of view.cleanups.splice(0)) cleanup();
  if (!session.token) return signInView();
  const [path] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  const section = parts[0] ?? "runs";
  for (const link of document.querySelectorAll("#nav a")) {
    link.hidden = Boolean(link.dataset.role) && !hasRole(link.dataset.role);
    link.toggleAttribute("aria-current", link.dataset.section === section);
  }
  try {
    if (section === "runs" && parts[1]) await runView(parts[1]);
    else if (section === "runs") await runsView();
    else if (section === "deploy" && hasRole("Deployer")) deployView();
    else if (section === "approvals") await approvalsView();
    else if (section === "clusters") await clustersView(parts[1]);
    else if (section === "hosts") await hostsView();
    else if (section === "modules") await modulesView(parts[1] && decodeURIComponent(parts[1]), parts[2] && decodeURIComponent(parts[2]));
    else if (section === "releases") await releasesView();
    else if (section === "messaging") await messagingView(parts[1] && decodeURIComponent(parts[1]));
    else if (section === "actors" && hasRole("Admin")) await actorsView();
    else if (section === "audit" && hasRole("Admin")) await auditView();
    else show(h("h1", {}, "Not here"), h("p", {}, "This page does not exist or your role does not allow it."));
  } catch (error) {
    if (session.token) show(h("h1", {}, "Something went wrong"), h("p", { class: "error" }, error.message));
  }
  main().focus({ preventScroll: true });
}

function startSession() {
  document.getElementById("nav").hidden = false;
  document.getElementById("session").hidden = false;
  document.getElementById("who").textContent = `${session.user.username} (${session.user.roles.join(", ")})`;
  live.start();
  if (!location.hash || location.hash === "#/") location.hash = "#/runs";
  else route();
}

async function signOut(message) {
  const token = session.token;
  session.token = null;
  session.user = null;
  live.stop();
  document.getElementById("nav").hidden = true;
  document.getElementById("session").hidden = true;
  for (const cleanup of view.cleanups.splice(0)) cleanup();
  if (token && !message) {
    // Revokes the token on the server; the page forgets it either way.
    fetch("/api/v1/authentication/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  }
  signInView(message);
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("sign-out").addEventListener("click", () => signOut());
  route();
});

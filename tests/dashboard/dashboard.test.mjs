// The dashboard in a real browser: Debian's Chromium driven by playwright-core.
// HOTSWAP_URL names a server started by tests/api/dashboard.rs (test profile,
// demo users). SCREENSHOT_DIR, when set, receives a PNG of each page.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import axe from "axe-core";

const BASE = process.env.HOTSWAP_URL;
// The binary under test, to start an agent with the token the page shows.
const HOTSWAP_BIN = process.env.HOTSWAP_BIN;
const SHOTS = process.env.SCREENSHOT_DIR;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const USERS = {
  Viewer: ["viewer", "Viewer123!"],
  Deployer: ["deployer", "Deploy123!"],
  Admin: ["admin", "Admin123!"],
};
const LONG = { timeout: 60_000 };

let browser;
const problems = [];
// Console lines a test causes on purpose (a refused request is logged by the browser itself).
const expectedProblems = [];

before(async () => {
  assert.ok(BASE, "HOTSWAP_URL names the server under test");
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
});

/** A phone's screen (an iPhone 12-15's, in CSS pixels). */
const PHONE = { width: 390, height: 844 };

/** A fresh page at the sign-in form; console errors and page errors are collected under `who`. */
async function openPage(who, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`${who} console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`${who} page error: ${error.message}`));
  await page.goto(BASE + "/");
  return page;
}

/** A fresh page signed in as `role`. */
async function signIn(role, viewport) {
  const page = await openPage(role, viewport);
  const [username, password] = USERS[role];
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#who").filter({ hasText: username }).waitFor();
  await page.locator(".live-state.live-live").waitFor();
  return page;
}

async function noSeriousViolations(page, what) {
  await page.evaluate(axe.source);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  // Each offending element with what axe measured, so that a failure seen once can be understood.
  const found = serious.map((v) => `${v.id}: ${v.help} (${v.nodes.length}): ${v.nodes.map((n) => `${n.target.join(" ")} ${n.failureSummary ?? ""}`).join("; ")}`);
  assert.deepEqual(found, [], `accessibility of ${what}`);
}

async function screenshot(page, name) {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function deploy(page, module, version, target, { approval = false, downgrade = false } = {}) {
  await page.goto(BASE + "/#/deploy");
  await page.getByLabel("Module").fill(module);
  await page.getByLabel("Version").fill(version);
  await page.getByLabel("Target environment").selectOption(target);
  if (approval) await page.getByLabel("Require approval").check();
  if (downgrade) await page.getByLabel("Allow a downgrade (audited)").check();
  await page.getByRole("button", { name: "Deploy" }).click();
  await page.waitForURL(/#\/runs\/[0-9a-f-]{36}$/);
  return page.url().split("/").pop();
}

const unique = (prefix) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;

test("each role sees what it may use", async () => {
  const viewer = await signIn("Viewer");
  assert.equal(await viewer.getByRole("link", { name: "Deploy" }).isVisible(), false);
  assert.equal(await viewer.getByRole("link", { name: "Actors" }).isVisible(), false);
  assert.equal(await viewer.getByRole("link", { name: "Audit" }).isVisible(), false);
  await viewer.goto(BASE + "/#/actors");
  await viewer.getByRole("heading", { name: "Not here" }).waitFor();
  await viewer.goto(BASE + "/#/runs");
  await viewer.getByRole("heading", { name: "Runs" }).waitFor();
  await noSeriousViolations(viewer, "the runs page");

  const deployer = await signIn("Deployer");
  assert.equal(await deployer.getByRole("link", { name: "Deploy" }).isVisible(), true);
  assert.equal(await deployer.getByRole("link", { name: "Actors" }).isVisible(), false);

  const admin = await signIn("Admin");
  for (const name of ["Deploy", "Approvals", "Actors", "Audit"]) {
    assert.equal(await admin.getByRole("link", { name }).isVisible(), true, `${name} for an Admin`);
  }
  await viewer.goto(BASE + "/#/hosts");
  await viewer.getByRole("heading", { name: "Hosts" }).waitFor();
  assert.equal(await viewer.getByRole("button", { name: "Make a token" }).count(), 0, "a Viewer makes no tokens");
  await viewer.goto(BASE + "/#/modules");
  await viewer.getByRole("heading", { name: "Signing keys" }).waitFor();
  assert.equal(await viewer.getByRole("button", { name: "Trust" }).count(), 0, "a Viewer trusts no keys");
  await admin.goto(BASE + "/#/audit");
  await admin.getByRole("heading", { name: "Audit trail" }).waitFor();
  await admin.locator("table.audit tbody tr").first().waitFor();
  await noSeriousViolations(admin, "the audit trail");
  await screenshot(admin, "audit");
  await admin.goto(BASE + "/#/clusters/QA");
  await admin.getByRole("heading", { name: "QA cluster" }).waitFor();
  await noSeriousViolations(admin, "a cluster");
  await screenshot(admin, "cluster");
  for (const page of [viewer, deployer, admin]) await page.context().close();
});

test("a run started in the browser is watched to Succeeded without a reload", async () => {
  const page = await signIn("Deployer");
  // Every read of a cluster's grid, by environment: the page reads one when
  // its stage changes and every few seconds while it runs, not on every step.
  const gridReads = {};
  page.on("request", (r) => {
    const environment = new URL(r.url()).pathname.match(/^\/api\/v1\/clusters\/(\w+)$/)?.[1];
    if (environment) gridReads[environment] = (gridReads[environment] ?? 0) + 1;
  });
  const startedAt = Date.now();
  const id = await deploy(page, unique("dash"), "1.0.0", "QA");
  // Marks this document: a reload would lose the mark.
  await page.evaluate(() => { window.sameDocument = true; });
  await page.locator('.run-header[data-status="Running"]').waitFor(LONG);
  await page.locator(".grid .node").first().waitFor();
  assert.match(await page.locator('.grid[aria-label="Development nodes"]').innerText(), /The first 100 of 120 nodes/);
  await screenshot(page, "run-running");
  await page.locator('.run-header[data-status="Succeeded"]').waitFor(LONG);
  assert.equal(await page.evaluate(() => window.sameDocument), true, "the page was not reloaded");
  // Both grids were read again when their stages ended: every node drawn is on the new version.
  for (const environment of ["Development", "QA"]) {
    await page.locator(`.grid[aria-label="${environment} nodes"] .legend`).filter({ hasText: /^\s*1\.0\.0\s*$/ }).waitFor();
  }
  // At most one read per status a stage went through (Pending, Running,
  // Succeeded), one per status the run went through (Running, Succeeded) and
  // one per five seconds it ran.
  const bound = 3 + 2 + Math.ceil((Date.now() - startedAt) / 5000);
  for (const environment of ["Development", "QA"]) {
    assert.ok(gridReads[environment] >= 1 && gridReads[environment] <= bound,
      `${environment} grid read ${gridReads[environment]} times, at most ${bound} expected`);
  }
  assert.match(await page.locator(".timeline").innerText(), /Deploy to QA/);
  // Nothing missing is drawn as the word "null" (a run that left no node behind).
  assert.doesNotMatch(await page.locator(".run-header").innerText(), /\bnull\b|Left on/);
  // The events, newest first, all of them here (a short run).
  assert.match(await page.locator("ol.events li").first().innerText(), /DeploymentCompleted/);
  await noSeriousViolations(page, "a run's page");
  await screenshot(page, "run");

  await page.goto(BASE + "/#/runs");
  await page.locator(`tr[data-run="${id}"] .run-status`, { hasText: "Succeeded" }).waitFor();
  // Durations read as people write them ("1.3 s"), not as the API's TimeSpan ("00:00:01.2896760").
  const duration = (await page.locator(`tr[data-run="${id}"] td`).nth(6).innerText()).trim();
  assert.match(duration, /^\d+(\.\d)? (ms|s)$|^\d+ (min|h|d)( \d+ (s|min|h))?$/, `the run's duration reads "${duration}"`);
  await screenshot(page, "runs");
  await page.context().close();
});

test("an Admin approves a waiting run and a Deployer aborts another", async () => {
  const deployer = await signIn("Deployer");
  const waiting = await deploy(deployer, unique("gate"), "2.0.0", "Staging", { approval: true });
  await deployer.locator('.run-header[data-status="PendingApproval"]').waitFor(LONG);
  const aborted = await deploy(deployer, unique("stop"), "3.0.0", "Staging", { approval: true });
  await deployer.locator('.run-header[data-status="PendingApproval"]').waitFor(LONG);

  const admin = await signIn("Admin");
  await admin.goto(BASE + "/#/approvals");
  const card = admin.locator(`article[data-run="${waiting}"]`);
  await card.waitFor(LONG);
  assert.match(await card.locator(".countdown").innerText(), /\d+h \d\dm \d\ds/);
  await noSeriousViolations(admin, "the approvals page");
  await screenshot(admin, "approvals");
  await card.getByRole("textbox").fill("checked in the browser test");
  await card.getByRole("button", { name: "Approve" }).click();
  await card.waitFor({ state: "detached", ...LONG });

  await deployer.goto(`${BASE}/#/runs/${waiting}`);
  await deployer.locator('.run-header[data-status="Succeeded"]').waitFor(LONG);

  await deployer.goto(`${BASE}/#/runs/${aborted}`);
  await deployer.locator('.run-header[data-status="PendingApproval"]').waitFor(LONG);
  // Abort asks first; Cancel sends nothing.
  const aborts = [];
  deployer.on("request", (r) => { if (r.method() === "POST" && r.url().endsWith("/abort")) aborts.push(r.url()); });
  const questions = [];
  deployer.once("dialog", (dialog) => { questions.push(dialog.message()); dialog.dismiss(); });
  await deployer.getByRole("button", { name: "Abort" }).click();
  deployer.once("dialog", (dialog) => dialog.accept());
  await deployer.getByRole("button", { name: "Abort" }).click();
  await deployer.locator('.run-header[data-status="Cancelled"]').waitFor(LONG);
  // A waiting run has changed nothing yet: its abort closes the approval.
  assert.match(questions[0] ?? "", /^Abort this run\? It has changed no node yet: .*approval request is closed/);
  assert.equal(aborts.length, 1, "only the confirmed abort was sent");
  for (const page of [deployer, admin]) await page.context().close();
});

test("a rollback dismissed at its question is not sent; one answered is, with the reason", async () => {
  const page = await signIn("Deployer");
  const id = await deploy(page, unique("back"), "1.0.0", "Development");
  await page.locator('.run-header[data-status="Succeeded"]').waitFor(LONG);
  const legend = page.locator('.grid[aria-label="Development nodes"] .legend');
  await legend.filter({ hasText: /^\s*1\.0\.0\s*$/ }).waitFor(LONG);
  const rollbacks = [];
  page.on("request", (r) => { if (r.method() === "POST" && r.url().endsWith("/rollback")) rollbacks.push(r.postDataJSON()); });
  page.once("dialog", (dialog) => dialog.dismiss());
  await page.getByRole("button", { name: "Rollback" }).click();
  page.once("dialog", (dialog) => dialog.accept("bad build"));
  await page.getByRole("button", { name: "Rollback" }).click();
  await page.locator('.run-header[data-status="RolledBack"]').waitFor(LONG);
  assert.deepEqual(rollbacks, [{ reason: "bad build" }], `run ${id}: only the answered rollback was sent`);
  // The grid is read again: its nodes run what they ran before (a new module: nothing), though every stage
  // still says Succeeded.
  await legend.filter({ hasText: /^\s*none\s*$/ }).waitFor(LONG);
  await page.context().close();
});

test("a page whose session is ended elsewhere signs out instead of reconnecting", async () => {
  const page = await signIn("Viewer");
  // The page's own token, as its requests carry it, signed out by another client.
  const sent = page.waitForRequest((r) => r.url().includes("/api/v1/") && r.headers().authorization);
  await page.goto(BASE + "/#/clusters");
  const authorization = (await sent).headers().authorization;
  // Whichever hears it first signs the page out: the live socket's 1008
  // close, an API call's 401, or the refused handshake of a reconnection
  // (which the browser logs with the socket's URL: the page then stops trying).
  expectedProblems.push(/^Viewer console: WebSocket connection to .* failed/);
  const token = authorization.replace(/^Bearer /, "");
  const logged = [];
  page.on("console", (message) => logged.push(message.text()));
  expectedProblems.push(/^Viewer console: Failed to load resource: the server responded with a status of 401/);
  const sockets = [];
  page.on("websocket", (socket) => sockets.push(socket.url()));
  const logout = await fetch(`${BASE}/api/v1/authentication/logout`, { method: "POST", headers: { Authorization: authorization } });
  assert.equal(logout.status, 204);
  await page.getByRole("heading", { name: "Sign in to HotSwap" }).waitFor(LONG);
  assert.match(await page.getByRole("alert").innerText(), /session has ended/);
  assert.equal(await page.locator("#nav").isHidden(), true);
  assert.ok(sockets.length <= 1, `no reconnection loop with the dead token: ${sockets.length} sockets opened`);
  for (const url of sockets) assert.ok(!url.includes(token) && !url.includes("access_token"), `no token in the socket's URL: ${url}`);
  assert.ok(!logged.some((text) => text.includes(token)), "the console never shows the token");
  await page.context().close();
});

test("a node that panics shows in the actor tree", async () => {
  const admin = await signIn("Admin");
  await admin.goto(BASE + "/#/actors");
  const row = admin.locator('tr[data-actor^="node:"]').first();
  await row.waitFor(LONG);
  const actor = await row.getAttribute("data-actor");
  const before = Number(await row.locator(".restarts").innerText());
  await row.getByRole("button", { name: /^Crash / }).click();
  const same = admin.locator(`tr[data-actor="${actor}"]`);
  await admin.waitForFunction(
    ([id, count]) => {
      const cell = document.querySelector(`tr[data-actor="${id}"] .restarts`);
      return cell && Number(cell.textContent) > count;
    },
    [actor, before],
    LONG,
  );
  assert.notEqual(await same.locator(".failure").innerText(), "", "the failure is shown");
  await noSeriousViolations(admin, "the actor tree");
  await screenshot(admin, "actors");
  await admin.context().close();
});

/** A token for `role` from the API itself, for setting the scene faster than the page could. */
async function token(role) {
  const [username, password] = USERS[role];
  const answer = await fetch(`${BASE}/api/v1/authentication/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  assert.equal(answer.status, 200, "the API login works");
  return (await answer.json()).token;
}

test("runs, a cluster's nodes and the audit trail page through what one page cannot hold", async () => {
  // More runs than a page holds (50): distinct modules, so that none waits for another's.
  const bearer = await token("Deployer");
  const prefix = unique("paged");
  const auth = { Authorization: `Bearer ${bearer}` };
  let firstRun;
  for (let batch = 0; batch < 11; batch += 1) {
    await Promise.all([0, 1, 2, 3, 4].map(async (i) => {
      const answer = await fetch(`${BASE}/api/v1/deployments`, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...auth },
        body: JSON.stringify({ moduleName: `${prefix}-${batch * 5 + i}`, version: "1.0.0", targetEnvironment: "Development", requesterEmail: "deployer@example.com" }),
      });
      assert.equal(answer.status, 202, `run ${batch * 5 + i} accepted`);
      if (batch === 0 && i === 0) firstRun = (await answer.json()).executionId;
    }));
  }
  // The node filter below needs the first of them finished.
  for (let status = ""; status !== "Succeeded";) {
    const run = await (await fetch(`${BASE}/api/v1/deployments/${firstRun}`, { headers: auth })).json();
    status = run.status;
    const why = (run.stages || []).map((stage) => `${stage.name}: ${stage.status} ${stage.message || ""}`).join("; ");
    assert.ok(["Running", "Succeeded"].includes(status), `the first run is ${status} (${why})`);
    if (status !== "Succeeded") await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const admin = await signIn("Admin");
  await admin.goto(BASE + "/#/runs");
  const pager = admin.locator("nav.pager");
  await pager.filter({ hasText: /^Runs 1–50 of \d+/ }).waitFor(LONG);
  const firstPage = await admin.locator("tr[data-run]").evaluateAll((rows) => rows.map((r) => r.dataset.run));
  assert.equal(firstPage.length, 50);
  await pager.getByRole("link", { name: "Older →" }).click();
  await pager.filter({ hasText: /Runs 51–/ }).waitFor(LONG);
  assert.match(admin.url(), /#\/runs\?page=2$/);
  await admin.locator("tr[data-run]").first().waitFor();
  const secondPage = await admin.locator("tr[data-run]").evaluateAll((rows) => rows.map((r) => r.dataset.run));
  assert.ok(secondPage.length > 0 && secondPage.every((id) => !firstPage.includes(id)), "page 2 holds other runs");
  await pager.getByRole("link", { name: "← Newer" }).click();
  await pager.filter({ hasText: /^Runs 1–50 of / }).waitFor(LONG);

  // Development has 120 simulated nodes here (tests/api/dashboard.rs): a page of 100, then 20.
  await admin.goto(BASE + "/#/clusters/Development");
  await pager.filter({ hasText: "Nodes 1–100 of 120" }).waitFor(LONG);
  assert.equal(await admin.locator("table.cluster-nodes tbody tr").count(), 100);
  await pager.getByRole("link", { name: "Next →" }).click();
  await pager.filter({ hasText: "Nodes 101–120 of 120" }).waitFor(LONG);
  assert.equal(await admin.locator("table.cluster-nodes tbody tr").count(), 20);
  // A filter starts again at its first page: every node runs the first of the modules above.
  await admin.getByLabel("Module").fill(`${prefix}-0`);
  await admin.getByRole("button", { name: "Filter" }).click();
  await pager.filter({ hasText: "Nodes 1–100 of 120" }).waitFor(LONG);
  await admin.getByLabel("Health").selectOption("unhealthy");
  await admin.getByRole("button", { name: "Filter" }).click();
  await pager.filter({ hasText: /^No nodes/ }).waitFor(LONG);
  await noSeriousViolations(admin, "a cluster's second page");
  // The live label is readable in every state (its amber once measured 4.49:1 against the light text).
  const label = (state) => {
    const l = document.getElementById("live-state");
    l.textContent = state;
    l.className = `live-state live-${state}`;
  };
  for (const state of ["reconnecting", "offline"]) {
    await admin.evaluate(label, state);
    await noSeriousViolations(admin, `the live label when ${state}`);
  }
  await admin.evaluate(label, "live");

  // The audit trail: every category the menu offers is one the API knows.
  await admin.goto(BASE + "/#/audit");
  await admin.locator("table.audit tbody tr").first().waitFor(LONG);
  const categories = await admin.getByLabel("Category").locator("option").evaluateAll((options) => options.map((o) => o.value).filter(Boolean));
  for (const category of categories) {
    await admin.goto(`${BASE}/#/audit?category=${category}`);
    await admin.locator("nav.pager").filter({ hasText: /match/ }).waitFor(LONG);
    assert.equal(await admin.getByRole("heading", { name: "Something went wrong" }).count(), 0, `category ${category}`);
  }
  await admin.goto(BASE + "/#/audit?category=Deployment");
  await pager.filter({ hasText: /entries match(?!;)/ }).waitFor(LONG);
  const entryIds = () => admin.locator("table.audit tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.dataset.entry)));
  const newest = await entryIds();
  await pager.getByRole("link", { name: "Older →" }).click();
  await pager.filter({ hasText: /older ones/ }).waitFor(LONG);
  assert.match(admin.url(), /category=Deployment&cursor=\d+$/);
  const older = await entryIds();
  assert.ok(older.length > 0 && Math.max(...older) < Math.min(...newest), `older entries ${older} after ${newest}`);
  await pager.getByRole("link", { name: "← Newest" }).click();
  await pager.filter({ hasText: /entries match(?!;)/ }).waitFor(LONG);
  await admin.context().close();
});

test("a downgrade is refused with the reason and goes through once allowed", async () => {
  const page = await signIn("Deployer");
  const module = unique("down");
  await deploy(page, module, "2.0.0", "Development");
  await page.locator('.run-header[data-status="Succeeded"]').waitFor(LONG);
  await page.goto(BASE + "/#/deploy");
  await page.getByLabel("Module").fill(module);
  await page.getByLabel("Version").fill("1.0.0");
  await page.getByLabel("Target environment").selectOption("Development");
  expectedProblems.push(/^Deployer console: Failed to load resource: the server responded with a status of 422/);
  await page.getByRole("button", { name: "Deploy" }).click();
  // The refusal names the form's checkbox, not the API's field.
  await page.getByRole("alert").filter({ hasText: /tick “Allow a downgrade”/ }).waitFor(LONG);
  assert.match(page.url(), /#\/deploy$/, "the refused run was not started");
  await page.getByLabel("Allow a downgrade (audited)").check();
  await page.getByRole("button", { name: "Deploy" }).click();
  await page.waitForURL(/#\/runs\/[0-9a-f-]{36}$/);
  await page.locator('.run-header[data-status="Succeeded"]').waitFor(LONG);
  await page.context().close();
});

test("an Admin enrols a host, retires it, and manages signing keys in the browser", async () => {
  assert.ok(HOTSWAP_BIN, "HOTSWAP_BIN names the hotswap binary");
  const admin = await signIn("Admin");
  await admin.goto(BASE + "/#/hosts");
  await admin.locator("form.enrol").getByLabel("Environment").selectOption("QA");
  await admin.getByLabel("Labels (key=value, comma separated)").fill("rack=r9, zone");
  await admin.getByRole("button", { name: "Make a token" }).click();
  await admin.getByRole("alert").filter({ hasText: '"zone" is not key=value' }).waitFor(LONG);
  await admin.getByLabel("Labels (key=value, comma separated)").fill("rack=r9");
  await admin.getByRole("button", { name: "Make a token" }).click();
  const command = await admin.locator("pre.command").innerText(LONG);
  const words = command.trim().split(/\s+/);
  assert.deepEqual(words.slice(0, 4), ["hotswap", "agent", "--server", BASE], command);
  const hostname = unique("dash-host");
  // The host runs the command as shown, with its own data directory and name.
  const agent = spawn(HOTSWAP_BIN, [...words.slice(1, words.indexOf("--data-dir")),
    "--data-dir", mkdtempSync(join(tmpdir(), "hotswap-dash-agent-")), "--hostname", hostname], { stdio: "ignore" });
  try {
    const row = admin.locator(`tr[data-host="${hostname}"]`);
    await row.filter({ hasText: "Connected" }).waitFor(LONG);
    assert.match(await row.innerText(), /QA/);
    assert.match(await row.innerText(), /rack=r9/);
    await noSeriousViolations(admin, "the hosts page");
    await screenshot(admin, "hosts");
    // The filters: another environment has no such host, QA's connected hosts have it.
    const filters = admin.getByRole("form", { name: "Filter hosts" });
    await filters.getByLabel("Environment").selectOption("Production");
    await filters.getByRole("button", { name: "Filter" }).click();
    await admin.waitForURL(/#\/hosts\?environment=Production$/);
    await row.waitFor({ state: "detached", ...LONG });
    await filters.getByLabel("Environment").selectOption("QA");
    await filters.getByLabel("Connection").selectOption("true");
    await filters.getByRole("button", { name: "Filter" }).click();
    await admin.waitForURL(/#\/hosts\?environment=QA&connected=true$/);
    await row.filter({ hasText: "Connected" }).waitFor(LONG);
  } finally {
    agent.kill();
  }
  // The host is retired: the Admin removes it, and its row goes.
  admin.once("dialog", (dialog) => dialog.accept());
  await admin.getByRole("button", { name: `Remove ${hostname}` }).click();
  await admin.locator(`tr[data-host="${hostname}"]`).waitFor({ state: "detached", ...LONG });

  // A module uploaded through the API shows in the registry with its versions.
  const module = unique("reg");
  const bearer = await token("Deployer");
  const upload = await fetch(`${BASE}/api/v1/modules`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ descriptor: { name: module, version: "1.0.0", description: "from the browser test", author: "tests" }, artifact: Buffer.from("module bytes").toString("base64") }),
  });
  assert.equal(upload.status, 201, await upload.text());
  await admin.goto(BASE + "/#/modules");
  await admin.locator(`tr[data-module="${module}"]`).getByRole("link", { name: module }).click();
  await admin.getByRole("heading", { name: `Module ${module}` }).waitFor(LONG);
  assert.match(await admin.locator('tr[data-version="1.0.0"]').innerText(), /Unsigned/);

  // A key pasted in the form is trusted, then revoked with the row's button.
  await admin.goto(BASE + "/#/modules");
  const keys = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const name = unique("key");
  await admin.getByLabel("Name").fill(name);
  await admin.getByLabel("Public key (PEM)").fill(keys.privateKey.export({ type: "pkcs8", format: "pem" }));
  await admin.getByRole("button", { name: "Trust" }).click();
  await admin.getByRole("alert").filter({ hasText: "That is a private key" }).waitFor(LONG);
  await admin.getByLabel("Public key (PEM)").fill(keys.publicKey.export({ type: "spki", format: "pem" }));
  await admin.getByRole("button", { name: "Trust" }).click();
  const keyRow = admin.locator(`tr[data-key="${name}"]`);
  await keyRow.waitFor(LONG);
  assert.match(await keyRow.innerText(), /sha256:[0-9a-f]{64}/);
  await noSeriousViolations(admin, "the modules page");
  await screenshot(admin, "modules");
  admin.once("dialog", (dialog) => dialog.accept());
  await keyRow.getByRole("button", { name: `Revoke ${name}` }).click();
  await admin.locator(`tr[data-key="${name}"]`).filter({ hasNot: admin.getByRole("button") }).waitFor(LONG);
  // The Revoked column holds the time now.
  assert.notEqual((await admin.locator(`tr[data-key="${name}"] td`).nth(4).innerText()).trim(), "—");
  await admin.context().close();
});

test("the message bus shows its backlog and dead letters, and a Deployer replays one", async () => {
  // Through the API: a topic whose one subscription gives up on a message after a single
  // unacknowledged delivery, two messages that end as dead letters, and one left waiting.
  const auth = { "Content-Type": "application/json", Authorization: `Bearer ${await token("Deployer")}` };
  const call = async (method, path, body) => {
    const answer = await fetch(BASE + path, { method, headers: auth, body: body && JSON.stringify(body) });
    assert.ok(answer.ok, `${method} ${path}: ${answer.status} ${await answer.clone().text()}`);
    return answer.status === 204 ? null : answer.json();
  };
  const topic = unique("orders");
  await call("POST", "/api/v1/topics", { name: topic, type: "Queue" });
  const sub = await call("POST", "/api/v1/subscriptions", { topicName: topic, consumerGroup: "billing", maxRetries: 0, ackTimeout: "1s" });
  for (const n of [1, 2]) await call("POST", "/api/v1/messages", { topicName: topic, payload: JSON.stringify({ order: n }) });
  const consume = `/api/v1/messages/consume/${topic}?subscriptionId=${sub.subscriptionId}&max=10`;
  assert.equal((await call("GET", consume)).messages.length, 2);
  for (let dead = 0; dead < 2;) {
    await call("GET", consume);
    dead = (await call("GET", `/api/v1/topics/${topic}/dlq`)).length;
  }
  await call("POST", "/api/v1/messages", { topicName: topic, payload: JSON.stringify({ order: 3 }) });

  const deployer = await signIn("Deployer");
  await deployer.getByRole("link", { name: "Messaging" }).click();
  const row = deployer.locator(`tr[data-topic="${topic}"]`);
  await row.waitFor(LONG);
  assert.equal(await row.locator("td.published").innerText(), "3");
  assert.equal(await row.locator("td.dead-lettered").innerText(), "2");
  assert.equal(await row.locator("td.waiting").innerText(), "1");
  await row.getByRole("link", { name: topic }).click();
  await deployer.getByRole("heading", { name: `Topic ${topic}` }).waitFor(LONG);
  const letters = deployer.locator("table.dead-letters tbody tr");
  assert.equal(await letters.count(), 2);
  assert.match(await letters.first().innerText(), /billing/);
  await noSeriousViolations(deployer, "a topic");
  await screenshot(deployer, "messaging");
  const first = await letters.first().getAttribute("data-message");
  await deployer.getByRole("button", { name: `Replay ${first}` }).click();
  await deployer.locator(`tr[data-message="${first}"]`).waitFor({ state: "detached", ...LONG });
  assert.equal(await deployer.locator('tr[data-subscription="billing"] td.waiting').innerText(), "2", "the replayed message waits again");
  await deployer.getByRole("button", { name: "Pause billing" }).click();
  await deployer.locator('tr[data-subscription="billing"]').filter({ hasText: "Paused" }).waitFor(LONG);
  await deployer.getByRole("button", { name: "Resume billing" }).waitFor(LONG);

  // A Viewer reads it all but changes nothing.
  const viewer = await signIn("Viewer");
  await viewer.goto(`${BASE}/#/messaging/${topic}`);
  await viewer.getByRole("heading", { name: `Topic ${topic}` }).waitFor(LONG);
  assert.equal(await viewer.getByRole("button").filter({ hasText: /Replay|Pause|Resume/ }).count(), 0);
  for (const page of [deployer, viewer]) await page.context().close();
});

test("a module's page says who depends on it and what another version would break", async () => {
  // Through the API: kbase and netx (which requires kbase ^1), released together to Development.
  const auth = { "Content-Type": "application/json", Authorization: `Bearer ${await token("Deployer")}` };
  const call = async (method, path, body) => {
    const answer = await fetch(BASE + path, { method, headers: auth, body: body && JSON.stringify(body) });
    assert.ok(answer.ok, `${method} ${path}: ${answer.status} ${await answer.clone().text()}`);
    return answer.json();
  };
  const [base, ext] = [unique("kbase"), unique("netx")];
  for (const [name, dependencies] of [[base, {}], [ext, { [base]: "^1" }]]) {
    const descriptor = { name, version: "1.0.0", dependencies };
    await call("POST", "/api/v1/modules", { descriptor, artifact: Buffer.from(`${name} bytes`).toString("base64") });
  }
  const batch = await call("POST", "/api/v1/deployments/batch", {
    modules: [{ module: ext, version: "1.0.0" }, { module: base, version: "1.0.0" }],
    targetEnvironment: "Development", requesterEmail: "deployer@example.com",
  });
  const deadline = Date.now() + LONG.timeout;
  for (let status = batch.status; status !== "Succeeded";) {
    assert.ok(status === "Running" && Date.now() < deadline, `the batch releases both modules: ${status}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    status = (await call("GET", `/api/v1/deployments/batch/${batch.batchId}`)).status;
  }

  const viewer = await signIn("Viewer");
  // The release, in order, on the Releases page.
  await viewer.getByRole("link", { name: "Releases" }).click();
  const release = viewer.locator(`tr[data-batch="${batch.batchId}"]`);
  await release.filter({ hasText: "Succeeded" }).waitFor(LONG);
  // Fewer releases than a page holds: the pager links to nothing and says nothing (it once said "nullnull").
  assert.equal((await viewer.getByRole("navigation", { name: "Pages of releases" }).innerText()).trim(), "");
  const steps = await release.locator("li[data-step]").evaluateAll((items) => items.map((li) => li.dataset.step));
  assert.deepEqual(steps, [base, ext], "each module after the one it depends on");
  await noSeriousViolations(viewer, "the releases page");
  await viewer.goto(`${BASE}/#/modules/${base}`);
  await viewer.getByRole("heading", { name: "Impact of 1.0.0" }).waitFor(LONG);
  const dependent = viewer.locator(`tr[data-dependent="${ext} 1.0.0"]`);
  assert.match(await dependent.innerText(), new RegExp(`${base} \\^1\\s+1\\s+Yes`));
  assert.match(await viewer.locator(".no-conflicts").innerText(), /would break/);
  // A version nobody has built yet: the form asks about it.
  await viewer.getByLabel("Check another version").fill("2.0.0");
  await viewer.getByRole("button", { name: "Check" }).click();
  await viewer.getByRole("heading", { name: "Impact of 2.0.0" }).waitFor(LONG);
  const conflicts = await viewer.getByRole("alert").filter({ hasText: "would break" }).innerText();
  assert.match(conflicts, new RegExp(`${ext} 1.0.0 requires ${base} \\^1, which 2.0.0 does not meet`));
  assert.match(await dependent.innerText(), /No/);
  await noSeriousViolations(viewer, "a module's impact");
  await screenshot(viewer, "impact");
  await viewer.context().close();

  // A Deployer releases from the page: an item without a version is refused there, then both go out again.
  const deployer = await signIn("Deployer");
  await deployer.getByRole("link", { name: "Releases" }).click();
  const items = deployer.getByLabel("Module versions (MODULE@VERSION, any order)");
  await items.fill(`${ext}@1.0.0 ${base}`);
  await deployer.getByRole("button", { name: "Release" }).click();
  await deployer.getByRole("alert").filter({ hasText: `'${base}' is not MODULE@VERSION` }).waitFor(LONG);
  await items.fill(`${ext}@1.0.0, ${base}@1.0.0`);
  await deployer.getByLabel("Target environment").selectOption("Development");
  await deployer.getByRole("button", { name: "Release" }).click();
  // The new batch heads the list (the first is still there until the page reloads it) and ends Succeeded.
  const newest = deployer.locator(`tbody tr[data-batch]:first-child[data-status="Succeeded"]:not([data-batch="${batch.batchId}"])`);
  await newest.waitFor(LONG);
  const order = await newest.locator("li[data-step]").evaluateAll((items) => items.map((li) => li.dataset.step));
  assert.deepEqual(order, [base, ext], "the page's release went out in dependency order too");
  await noSeriousViolations(deployer, "the releases page of a Deployer");
  await screenshot(deployer, "releases");
  // Paging back from the newest release: the older one, and a link back to the newest.
  const newestId = await newest.getAttribute("data-batch");
  await deployer.goto(`${BASE}/#/releases?before=${newestId}`);
  await deployer.locator(`tr[data-batch="${batch.batchId}"]`).waitFor(LONG);
  assert.equal(await deployer.locator(`tr[data-batch="${newestId}"]`).count(), 0, "the page starts after the newest");
  await deployer.getByRole("link", { name: "← Newest" }).click();
  await deployer.locator(`tr[data-batch="${newestId}"]`).waitFor(LONG);
  await deployer.context().close();
});

test("a locked-out user is told that failed sign-ins lock sign-in, not whether the password was right", async () => {
  const username = unique("locky");
  const password = "LockyPassword1!";
  const created = await fetch(`${BASE}/api/v1/users`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${await token("Admin")}` },
    body: JSON.stringify({ username, email: `${username}@example.com`, password, roles: ["Viewer"] }),
  });
  assert.equal(created.status, 201, await created.text());
  const login = async (attempt) => {
    const answer = await fetch(`${BASE}/api/v1/authentication/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password: attempt }),
    });
    return { status: answer.status, message: (await answer.json()).message };
  };
  // auth.max_failed_logins (5) wrong passwords from this address lock the account for it.
  for (let i = 0; i < 5; i += 1) assert.equal((await login("wrong-password")).status, 401);
  const page = await openPage("Locked out");
  expectedProblems.push(/^Locked out console: Failed to load resource: the server responded with a status of 401/);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  const refusal = page.getByRole("alert").filter({ hasText: "Invalid username or password" });
  await refusal.waitFor(LONG);
  // The page says why the right password may be refused, as it would to a wrong one.
  assert.match(await refusal.innerText(), /failed sign-ins in a row lock sign-in .* for a while/);
  // The API answers the right password as it answers a wrong one: a guesser learns nothing from it.
  assert.deepEqual(await login(password), await login("another-wrong-password"));
  await page.context().close();
});

test("at a phone's width every section and Sign out are in reach, and no page scrolls sideways", async () => {
  const auth = { "Content-Type": "application/json", Authorization: `Bearer ${await token("Deployer")}` };
  const started = await fetch(`${BASE}/api/v1/deployments`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({ moduleName: unique("phone"), version: "1.0.0", targetEnvironment: "Development", requesterEmail: "deployer@example.com" }),
  });
  assert.equal(started.status, 202, await started.clone().text());
  const run = (await started.json()).executionId;
  const module = unique("pocket");
  const uploaded = await fetch(`${BASE}/api/v1/modules`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({ descriptor: { name: module, version: "1.0.0", description: "read on a phone" }, artifact: Buffer.from("bytes").toString("base64") }),
  });
  assert.equal(uploaded.status, 201, await uploaded.text());

  const admin = await signIn("Admin", PHONE);
  // Each view with what shows that its data has come (a table may scroll inside itself, the page may not).
  const views = {
    runs: "tr[data-run]",
    [`runs/${run}`]: ".grid .node",
    deploy: "form.deploy",
    approvals: ".approvals > *",
    clusters: "table tbody tr",
    "clusters/Development": "table.cluster-nodes tbody tr",
    hosts: "table.hosts",
    modules: "tr[data-module]",
    [`modules/${module}`]: ".impact form",
    releases: "table.releases",
    messaging: "table.topics",
    actors: "tr[data-actor]",
    audit: "table.audit tbody tr",
  };
  for (const [view, loaded] of Object.entries(views)) {
    await admin.goto(`${BASE}/#/${view}`);
    await admin.locator(loaded).first().waitFor(LONG);
    const { scrollWidth, clientWidth } = await admin.evaluate(() => {
      const { scrollWidth, clientWidth } = document.documentElement;
      return { scrollWidth, clientWidth };
    });
    assert.ok(scrollWidth <= clientWidth, `#/${view} is ${scrollWidth} px wide on a ${clientWidth} px screen`);
    // Every section's link, the live state and Sign out are on the screen, none under another.
    for (const target of [...await admin.locator("#nav a").all(), admin.locator("#live-state"), admin.getByRole("button", { name: "Sign out" })]) {
      const box = await target.boundingBox();
      const name = await target.innerText();
      assert.ok(box && box.x >= 0 && box.x + box.width <= clientWidth, `${name} on #/${view}: ${JSON.stringify(box)}`);
      const hit = await target.evaluate((element) => {
        const { x, y, width, height } = element.getBoundingClientRect();
        return element.contains(document.elementFromPoint(x + width / 2, y + height / 2));
      });
      assert.ok(hit, `${name} on #/${view} is not covered`);
    }
  }
  await admin.getByRole("button", { name: "Sign out" }).click();
  await admin.getByRole("heading", { name: "Sign in to HotSwap" }).waitFor(LONG);
  await admin.context().close();
});

/** A call to the API as `role`, which must succeed; its JSON answer. */
async function asRole(role, method, path, body, headers = {}) {
  const answer = await fetch(BASE + path, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${await token(role)}`, ...headers },
    body: body && JSON.stringify(body),
  });
  const text = await answer.text();
  assert.ok(answer.ok, `${method} ${path}: ${answer.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Starts a run through the API; its id. */
async function startRun(module, version, target, metadata = {}) {
  const run = await asRole("Deployer", "POST", "/api/v1/deployments",
    { moduleName: module, version, targetEnvironment: target, requesterEmail: "deployer@example.com", metadata });
  return run.executionId;
}

/** Polls the API until the run has ended; its status. */
async function runEnds(id) {
  const deadline = Date.now() + LONG.timeout;
  for (;;) {
    const run = await asRole("Deployer", "GET", `/api/v1/deployments/${id}`);
    if (!["Running", "PendingApproval", "Paused"].includes(run.status)) return run.status;
    assert.ok(Date.now() < deadline, `run ${id} still ${run.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test("the Abort question says that every node the run changed is put back, in every environment", async () => {
  // Slow loads in QA (each well within the time a node is given to answer): the run is still under way while the
  // question is read.
  const id = await startRun(unique("halt"), "1.0.0", "QA", { "simulateNodeDelayMs@QA": "800" });
  const page = await signIn("Deployer");
  await page.goto(`${BASE}/#/runs/${id}`);
  await page.locator('.run-header[data-status="Running"]').waitFor(LONG);
  const asked = new Promise((resolve) => page.once("dialog", (dialog) => { resolve(dialog.message()); dialog.dismiss(); }));
  await page.getByRole("button", { name: "Abort" }).click();
  const question = await asked;
  assert.match(question, /every node it changed is put back .* in every environment, the stages already finished included/, question);
  await page.context().close();
});

test("Promote is offered only in a stage with a wait to skip, and Rollback only where a node may still run the version", async () => {
  // Development (Direct) loads slowly (tests/api/dashboard.rs gives nodes 10 s to answer), then QA (Rolling)
  // waits after each batch.
  const id = await startRun(unique("prom"), "1.0.0", "QA", { "simulateNodeDelayMs@Development": "4000", "simulateNodeDelayMs@QA": "500" });
  const page = await signIn("Deployer");
  await page.goto(`${BASE}/#/runs/${id}`);
  await page.locator(".timeline .stage.stage-running", { hasText: "Deploy to Development" }).waitFor(LONG);
  await page.getByRole("button", { name: "Pause" }).waitFor(LONG);
  assert.equal(await page.getByRole("button", { name: "Promote" }).count(), 0, "a Direct stage has no wait to skip");
  await page.locator(".timeline .stage.stage-running", { hasText: "Deploy to QA" }).waitFor(LONG);
  await page.getByRole("button", { name: "Promote" }).click();
  await page.locator("#notice").filter({ hasText: "Promote accepted" }).waitFor(LONG);

  // A run whose own restore put every node back (Direct: one failure restores them all) offers no Rollback.
  const failed = await startRun(unique("fail"), "1.0.0", "Development", { simulateFailNodes: "development-node-05" });
  assert.equal(await runEnds(failed), "Failed");
  await page.goto(`${BASE}/#/runs/${failed}`);
  await page.locator('.run-header[data-status="Failed"]').waitFor(LONG);
  assert.match(await page.locator(".verbs").innerText(), /Nothing to roll back: its own restore put back every node it changed/);
  assert.equal(await page.getByRole("button", { name: "Rollback" }).count(), 0);

  // A Succeeded run whose nodes a later run replaced: the page cannot see all 120 nodes, so it offers Rollback;
  // the server's refusal stays in its place.
  const module = unique("gone");
  const first = await startRun(module, "1.0.0", "Development");
  assert.equal(await runEnds(first), "Succeeded");
  assert.equal(await runEnds(await startRun(module, "2.0.0", "Development")), "Succeeded");
  expectedProblems.push(/^Deployer console: Failed to load resource: the server responded with a status of 409/);
  await page.goto(`${BASE}/#/runs/${first}`);
  await page.locator('.run-header[data-status="Succeeded"]').waitFor(LONG);
  page.once("dialog", (dialog) => dialog.accept("replaced anyway"));
  await page.getByRole("button", { name: "Rollback" }).click();
  await page.locator(".verbs .refused").filter({ hasText: /Rollback refused: There is nothing to roll back: no node it changed still runs its version/ }).waitFor(LONG);
  assert.equal(await page.getByRole("button", { name: "Rollback" }).count(), 0, "the refused button is gone");
  await noSeriousViolations(page, "a run with nothing to roll back");
  await page.context().close();
});

test("a long module name and version wrap instead of widening the run's page", async () => {
  const module = `${unique("long")}-${"x".repeat(52)}`;
  const version = "1.0.0-alpha.very.long.prerelease.identifier.with.many.parts+build.metadata.20261208.abcdef0123456789";
  const id = await startRun(module, version, "Development");
  for (const viewport of [{ width: 1280, height: 900 }, PHONE]) {
    const page = await signIn("Viewer", viewport);
    await page.goto(`${BASE}/#/runs/${id}`);
    await page.locator(".grid .node").first().waitFor(LONG);
    const { scrollWidth, clientWidth } = await page.evaluate(() => {
      const { scrollWidth, clientWidth } = document.documentElement;
      return { scrollWidth, clientWidth };
    });
    assert.ok(scrollWidth <= clientWidth, `the run's page is ${scrollWidth} px wide in a ${clientWidth} px window`);
    assert.match(await page.locator("h1").innerText(), new RegExp(version.replaceAll(".", "\\.").replace("+", "\\+")));
    await page.context().close();
  }
});

test("pages that redraw every few seconds keep the keyboard's focus where it was", async () => {
  const admin = await signIn("Admin");
  // The actor tree is read every 2 s; a Crash button a few rows down.
  await admin.goto(BASE + "/#/actors");
  const button = admin.locator('tr[data-actor^="node:"]').nth(2).getByRole("button");
  await button.waitFor(LONG);
  const name = await button.getAttribute("aria-label");
  await button.focus();
  // A redraw of the table replaces the row marked before it.
  const redrawn = async (row) => {
    await admin.evaluate((selector) => { document.querySelector(selector).drawnBefore = true; }, row);
    await admin.waitForFunction((selector) => !document.querySelector(selector)?.drawnBefore, row, LONG);
  };
  await redrawn(`tr[data-actor="${name.replace(/^Crash /, "")}"]`);
  assert.equal(await admin.evaluate(() => document.activeElement?.getAttribute("aria-label")), name, "focus stays on the same Crash button");
  // Messaging is read every 5 s.
  await admin.goto(BASE + "/#/messaging");
  const link = admin.locator("tr[data-topic] a").first();
  await link.waitFor(LONG);
  const topic = await link.innerText();
  await link.focus();
  await redrawn(`tr[data-topic="${topic}"]`);
  assert.equal(await admin.evaluate(() => document.activeElement?.textContent), topic, "focus stays on the topic's link");
  await admin.context().close();
});

test("a module's page tells a verified signature from an unverified one and from none", async () => {
  const module = unique("sig");
  const trusted = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyName = unique("team");
  const key = await asRole("Admin", "POST", "/api/v1/signing-keys",
    { name: keyName, publicKeyPem: trusted.publicKey.export({ type: "spki", format: "pem" }) });
  // Each version signed as `hotswap module sign` does: the statement of its name, version and digest.
  const upload = async (version, signer) => {
    const artifact = Buffer.from(`${module} ${version} bytes`);
    const digest = createHash("sha256").update(artifact).digest("hex");
    const statement = `hotswap-module-signature-v1\nname=${module}\nversion=${version}\nsha256=${digest}\n`;
    await asRole("Deployer", "POST", "/api/v1/modules", {
      descriptor: { name: module, version },
      artifact: artifact.toString("base64"),
      signature: signer ? sign("sha256", Buffer.from(statement), signer.privateKey).toString("base64") : undefined,
    });
  };
  await upload("1.0.0", trusted);
  await upload("1.1.0", stranger);
  await upload("1.2.0", null);
  const viewer = await signIn("Viewer");
  const cell = (version) => viewer.locator(`tr[data-version="${version}"] td.signature`);
  await viewer.goto(`${BASE}/#/modules/${module}`);
  await viewer.getByRole("heading", { name: `Module ${module}` }).waitFor(LONG);
  assert.match(await cell("1.0.0").innerText(), new RegExp(`^Verified ${keyName}`));
  assert.match(await cell("1.1.0").innerText(), /^Unverified signed by no trusted key/);
  assert.equal((await cell("1.2.0").innerText()).trim(), "Unsigned");
  await noSeriousViolations(viewer, "a module's signatures");
  // Its key revoked, 1.0.0 no longer verifies, and the page says why.
  await asRole("Admin", "POST", `/api/v1/signing-keys/${encodeURIComponent(key.id)}/revoke`, {});
  await viewer.goto(`${BASE}/#/modules`);
  await viewer.getByRole("heading", { name: "Signing keys" }).waitFor(LONG);
  await viewer.goto(`${BASE}/#/modules/${module}`);
  await cell("1.0.0").filter({ hasText: /^Unverified/ }).waitFor(LONG);
  assert.match(await cell("1.0.0").innerText(), new RegExp(`^Unverified its key ${keyName} was revoked`));
  await viewer.context().close();
});

test("over the tenant's live-session quota the page says so instead of reconnecting for ever", async () => {
  // A Free tenant (5 live sessions) and a Viewer in it.
  const tenant = await asRole("Admin", "POST", "/api/tenants",
    { name: "Tiny Free", subdomain: unique("tiny"), contactEmail: "ops@tiny.example", tier: "Free" });
  const username = unique("tinyview");
  const password = "TinyViewer123!";
  await asRole("Admin", "POST", "/api/v1/users", { username, email: `${username}@tiny.example`, password, roles: ["Viewer"] },
    { "X-Tenant-Id": tenant.tenantId });
  const login = await fetch(`${BASE}/api/v1/authentication/login`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ username, password }),
  });
  const bearer = (await login.json()).token;
  // Five sessions of the tenant held open elsewhere.
  const holder = await openPage("Quota holder");
  const opened = await holder.evaluate((bearer) => Promise.all([1, 2, 3, 4, 5].map(() => new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://${location.host}/api/v1/ws`, ["hotswap.v1", `hotswap.bearer.${bearer}`]);
    (window.held ??= []).push(socket);
    socket.onopen = () => resolve(true);
    socket.onclose = () => reject(new Error("a held session closed"));
  }))), bearer);
  assert.equal(opened.length, 5);

  expectedProblems.push(/^Quota console: WebSocket connection to .* failed/);
  expectedProblems.push(/^Quota console: Failed to load resource: the server responded with a status of 403/);
  const page = await openPage("Quota");
  const sockets = [];
  page.on("websocket", (socket) => sockets.push(socket));
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  const banner = page.locator("#live-problem");
  await banner.filter({ hasText: "Live updates are off" }).waitFor(LONG);
  assert.match(await banner.innerText(), /live sessions are all in use \(5 of 5, its websocketSessions quota\)/);
  assert.equal((await page.locator("#live-state").innerText()).trim(), "live off");
  // It waits before trying again (a minute), rather than every few seconds.
  assert.equal(sockets.length, 1, "one refused connection so far");
  assert.equal(await holder.evaluate(() => window.held.filter((socket) => socket.readyState === WebSocket.OPEN).length), 5,
    "the five sessions were held open throughout");
  await noSeriousViolations(page, "a page whose live connection is refused");
  for (const p of [page, holder]) await p.context().close();
});

test("no page logged an error", () => {
  // The browser reports the deliberate actor crash nowhere; anything here is a defect.
  assert.deepEqual(problems.filter((problem) => !expectedProblems.some((expected) => expected.test(problem))), []);
});

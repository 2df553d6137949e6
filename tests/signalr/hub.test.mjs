// Drives /hubs/deployment with the official @microsoft/signalr client, the way
// the original's clients do: negotiate, then each of the three transports
// (WebSockets, Server-Sent Events, Long Polling), JSON hub protocol.
// HOTSWAP_URL names a running server (tests/api/signalr.rs starts one).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as signalR from "@microsoft/signalr";

const base = process.env.HOTSWAP_URL;
assert.ok(base, "HOTSWAP_URL must name a running HotSwap server");

const TRANSPORTS = {
  WebSockets: signalR.HttpTransportType.WebSockets,
  ServerSentEvents: signalR.HttpTransportType.ServerSentEvents,
  LongPolling: signalR.HttpTransportType.LongPolling,
};

/** A connection over `transport` that records the two hub events it hears. */
function listening(transport) {
  const conn = connect(transport);
  const status = [];
  const progress = [];
  conn.on("DeploymentStatusChanged", (e) => status.push(e));
  conn.on("DeploymentProgress", (e) => progress.push(e));
  return { conn, status, progress };
}

function connect(transport) {
  return new signalR.HubConnectionBuilder()
    .withUrl(`${base}/hubs/deployment`, { accessTokenFactory: () => process.env.HOTSWAP_TOKEN, transport: TRANSPORTS[transport] })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
}

async function deploy(moduleName, targetEnvironment) {
  const res = await fetch(`${base}/api/v1/deployments`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${process.env.HOTSWAP_TOKEN}` },
    body: JSON.stringify({ moduleName, version: "1.0.0", targetEnvironment, requesterEmail: "hub@example.com" }),
  });
  assert.equal(res.status, 202);
  return (await res.json()).executionId;
}

function waitFor(predicate, what, ms = 15000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      const found = predicate();
      if (found) {
        clearInterval(timer);
        resolve(found);
      } else if (Date.now() - started > ms) {
        clearInterval(timer);
        reject(new Error(`timed out waiting for ${what}`));
      }
    }, 20);
  });
}

for (const transport of Object.keys(TRANSPORTS)) {
  test(`hub methods and events of the original over ${transport}`, async () => {
    const { conn, status, progress } = listening(transport);
    await conn.start();
    assert.equal(conn.state, signalR.HubConnectionState.Connected);
    // The client took the transport it was told to, not a fallback.
    const classes = { WebSockets: "WebSocketTransport", ServerSentEvents: "ServerSentEventsTransport", LongPolling: "LongPollingTransport" };
    assert.equal(conn.connection.transport.constructor.name, classes[transport]);

    await conn.invoke("SubscribeToAllDeployments");
    const id = await deploy(`kmod-hub-${transport.toLowerCase()}`, "QA");
    await conn.invoke("SubscribeToDeployment", id);

    const done = await waitFor(
      () => status.find((e) => e.executionId === id && e.status === "Succeeded"),
      "the run to succeed",
    );
    assert.equal(done.details.executionId, id);
    assert.equal(done.details.request.module.name, `kmod-hub-${transport.toLowerCase()}`);
    assert.equal(done.details.request.targetEnvironment, "QA");
    assert.ok(Array.isArray(done.details.stages) && done.details.stages.length === 4);
    assert.ok(!Number.isNaN(Date.parse(done.updatedAt)));
    assert.equal(status[0].status, "Running");
    // Every stage change is a status change too, naming the stage it is at.
    const stagesSeen = new Set(status.filter((e) => e.executionId === id).map((e) => e.details.currentStage));
    assert.ok(stagesSeen.has("Deploy to Development") && stagesSeen.has("Deploy to QA"), JSON.stringify([...stagesSeen]));

    const mine = await waitFor(() => {
      const p = progress.filter((e) => e.executionId === id);
      return p.length && p[p.length - 1].progress === 100 ? p : null;
    }, "progress to reach 100");
    for (const p of mine) {
      assert.ok(Number.isInteger(p.progress) && p.progress >= 0 && p.progress <= 100, JSON.stringify(p));
    }
    // Each progress names the stage it was made in: Development's 3 nodes are
    // the first 38 % of the 8 on the path (they were labelled "Deploy to QA",
    // the stage the same save started).
    for (const p of mine.filter((p) => p.progress < 100)) {
      const expected = p.progress <= 38 ? "Deploy to Development" : "Deploy to QA";
      assert.equal(p.stage, expected, JSON.stringify(mine));
    }
    // The end is announced once (it was twice: for Validation's completion and for the run's).
    const ends = status.filter((e) => e.executionId === id && e.status === "Succeeded");
    assert.equal(ends.length, 1, JSON.stringify(ends.map((e) => e.details.currentStage)));

    // A blank id is a hub error, as in the original.
    await assert.rejects(conn.invoke("SubscribeToDeployment", ""), /executionId is required/);
    await assert.rejects(conn.invoke("NoSuchMethod"), /Method does not exist/);

    // After unsubscribing from everything, another run's events do not arrive.
    await conn.invoke("UnsubscribeFromDeployment", id);
    await conn.invoke("UnsubscribeFromAllDeployments");
    const seen = status.length + progress.length;
    const other = await deploy(`kmod-hub-2-${transport.toLowerCase()}`, "Development");
    for (let i = 0; i < 500; i++) {
      const run = await (await fetch(`${base}/api/v1/deployments/${other}`, { headers: { authorization: `Bearer ${process.env.HOTSWAP_TOKEN}` } })).json();
      if (run.status === "Succeeded") break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(status.length + progress.length, seen, "no events after unsubscribing");
    await conn.stop();
  });

  test(`a progress-only subscriber of one run, with the original's group rules, over ${transport}`, async () => {
    const { conn, status, progress } = listening(transport);
    await conn.start();
    await conn.invoke("SubscribeToAllDeployments");
    const id = await deploy(`kmod-hub-3-${transport.toLowerCase()}`, "Development");
    await waitFor(() => status.find((e) => e.executionId === id && e.status === "Succeeded"), "the run to succeed");
    // all-deployments receives status changes only; progress goes to the run's group.
    assert.equal(progress.filter((e) => e.executionId === id).length, 0);
    await conn.stop();
  });
}

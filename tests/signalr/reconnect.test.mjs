// The official client's automatic reconnect across a restart of the server.
// tests/durability/signalr_reconnect.rs starts the server, runs this file,
// and restarts the server when this file prints RESTART_NOW.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as signalR from "@microsoft/signalr";

const base = process.env.HOTSWAP_URL;
let token = process.env.HOTSWAP_TOKEN;

/** A token from the server as it is now: a restarted server on the memory
 *  store has new password hashes, which end the tokens it issued before, so
 *  the client signs in again as real clients' token factories do. */
async function freshToken() {
  const res = await fetch(`${base}/api/v1/authentication/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password: "Admin123!" }),
  });
  if (res.ok) token = (await res.json()).token;
  return token;
}
const transport = signalR.HttpTransportType[process.env.HOTSWAP_TRANSPORT ?? "WebSockets"];

function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

test("the client reconnects after the server restarts and hears new runs", async () => {
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(`${base}/hubs/deployment`, { accessTokenFactory: freshToken, transport })
    // Keeps trying every 300 ms while the server is down.
    .withAutomaticReconnect({ nextRetryDelayInMilliseconds: (ctx) => (ctx.elapsedMilliseconds < 60_000 ? 300 : null) })
    .configureLogging(signalR.LogLevel.None)
    .build();
  const reconnecting = new Promise((resolve) => conn.onreconnecting(resolve));
  const reconnected = new Promise((resolve) => conn.onreconnected(resolve));
  const finished = new Map();
  conn.on("DeploymentStatusChanged", (e) => { if (e.status === "Succeeded") finished.set(e.executionId, e); });
  await conn.start();
  await conn.invoke("SubscribeToAllDeployments");

  console.log("RESTART_NOW");
  const lost = await within(30_000, "the client noticed the lost connection", reconnecting);
  if (process.env.HOTSWAP_EXPECT_SHUTDOWN_CLOSE) {
    // A clean stop sends the hub's close message (allowing a reconnect)
    // rather than dropping the connection.
    assert.match(String(lost?.message), /The server is shutting down/);
  }
  await within(60_000, "the client reconnected", reconnected);
  assert.equal(conn.state, signalR.HubConnectionState.Connected);

  // Groups belong to a connection: after reconnecting the client joins again.
  await conn.invoke("SubscribeToAllDeployments");
  const res = await fetch(`${base}/api/v1/deployments`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ moduleName: "kmod-after-restart", version: "1.0.0", targetEnvironment: "Development", requesterEmail: "hub@example.com" }),
  });
  assert.equal(res.status, 202, await res.clone().text());
  const { executionId } = await res.json();
  await within(30_000, "the new run's success", new Promise((resolve) => {
    const check = setInterval(() => { if (finished.has(executionId)) { clearInterval(check); resolve(); } }, 20);
  }));
  await conn.stop();
});

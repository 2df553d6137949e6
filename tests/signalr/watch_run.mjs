// Follows one run on /hubs/deployment with the official client, for
// tests/redis (the run is driven by another instance than this one).
// Subscribes to every run, prints READY, reads the run's id from stdin, and
// prints each DeploymentStatusChanged of that run as a JSON line until the
// run has ended; exits 1 after a minute without that.
import * as signalR from "@microsoft/signalr";
import { createInterface } from "node:readline";

const ENDED = new Set(["Succeeded", "Failed", "Cancelled", "RolledBack"]);
const heard = [];
const conn = new signalR.HubConnectionBuilder()
  .withUrl(`${process.env.HOTSWAP_URL}/hubs/deployment`, {
    accessTokenFactory: () => process.env.HOTSWAP_TOKEN,
    transport: signalR.HttpTransportType.WebSockets,
  })
  .configureLogging(signalR.LogLevel.Warning)
  .build();
let id = null;
let done;
const ended = new Promise((resolve) => { done = resolve; });
const check = () => { if (id && heard.some((e) => e.executionId === id && ENDED.has(e.status))) done(); };
conn.on("DeploymentStatusChanged", (e) => { heard.push(e); check(); });
await conn.start();
await conn.invoke("SubscribeToAllDeployments");
console.log("READY");
const lines = createInterface({ input: process.stdin });
for await (const line of lines) { id = line.trim(); break; }
check();
const timer = setTimeout(() => { console.log("TIMEOUT"); process.exit(1); }, 60_000);
await ended;
clearTimeout(timer);
for (const e of heard.filter((e) => e.executionId === id)) console.log(JSON.stringify(e));
await conn.stop();
process.exit(0);

// The load proof: N RC QP pairs between two processes over UDP on loopback (127.0.12.1 and
// 127.0.12.2), 3 WRITEs per pair (1000, 4096 and 9000 bytes), the default ACK timeout (14,
// 67 ms) and retry count (7). Prints, per size: time, WRs completed by status, duplicates,
// bytes checked at the target, datagrams sent against the minimum (retransmissions), and
// the memory of both processes. Usage: node bench/load.mjs [pairs ...]  (default 1000 4096).
// runLoad() is also what test/system/load.sys.mjs asserts on.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { neededPackets } from "./load-common.mjs";

const PEER = fileURLToPath(new URL("./load-peer.mjs", import.meta.url));

function child(role, address, pairs) {
  const p = spawn(process.execPath, [PEER, role, address, String(pairs)], { stdio: ["pipe", "pipe", "inherit"] });
  const inbox = [];
  let wake;
  createInterface({ input: p.stdout }).on("line", (l) => {
    try { inbox.push(JSON.parse(l)); } catch { inbox.push({ text: l }); }
    wake?.();
  });
  let exited = false;
  p.on("exit", () => { exited = true; wake?.(); });
  return {
    proc: p,
    send: (o) => p.stdin.write(`${JSON.stringify(o)}\n`),
    async next(what) {
      for (;;) {
        const i = inbox.findIndex((m) => what in m);
        if (i >= 0) return inbox.splice(i, 1)[0][what];
        if (exited) throw new Error(`${role} exited before sending ${what}`);
        await new Promise((r) => (wake = r));
      }
    },
  };
}

/** Runs one load round with `pairs` QP pairs; resolves with the figures. */
export async function runLoad(pairs) {
  const target = child("target", "127.0.12.1", pairs);
  const writer = child("writer", "127.0.12.2", pairs);
  try {
    const th = await target.next("hello");
    const wh = await writer.next("hello");
    target.send({ hello: wh });
    await target.next("ready");
    writer.send({ hello: th });
    const done = await writer.next("done");
    target.send({ check: true });
    const checked = await target.next("checked");
    const needed = neededPackets(pairs);
    const sent = Number(done.counters.sent_pkts);
    return {
      pairs, wrs: 3 * pairs, seconds: done.seconds, statuses: done.statuses, completions: done.completions,
      duplicates: done.duplicates, missing: done.missing, wrongWrites: checked.wrongWrites,
      requestPackets: sent, neededPackets: needed, retransmitted: Math.max(0, sent - needed),
      retransmitPct: (100 * Math.max(0, sent - needed)) / needed,
      writer: { rssMiB: done.rssMiB, wasmMiB: done.wasmMiB, counters: done.counters },
      target: { rssMiB: checked.rssMiB, wasmMiB: checked.wasmMiB, counters: checked.counters },
    };
  } finally {
    for (const c of [writer, target]) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
  }
}

function show(r) {
  const st = Object.entries(r.statuses).map(([k, v]) => `${k} ${v}`).join(", ");
  console.log(`${String(r.pairs).padStart(5)} pairs: ${r.seconds.toFixed(2)} s; ${r.completions}/${r.wrs} WRs completed (${st}); ` +
    `duplicates ${r.duplicates}, never completed ${r.missing}; target: ${r.wrs - r.wrongWrites}/${r.wrs} WRITEs' bytes right`);
  console.log(`        request datagrams ${r.requestPackets} for ${r.neededPackets} needed: ${r.retransmitted} retransmitted (${r.retransmitPct.toFixed(2)} %); ` +
    `writer retry_exceeded ${r.writer.counters.retry_exceeded_err}, target duplicate_request ${r.target.counters.duplicate_request}`);
  console.log(`        memory: writer rss ${r.writer.rssMiB} MiB (wasm ${r.writer.wasmMiB} MiB), target rss ${r.target.rssMiB} MiB (wasm ${r.target.wasmMiB} MiB)`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const sizes = process.argv.slice(2).map(Number);
  console.log("load: RC QP pairs between two processes over UDP loopback, 3 WRITEs each (1000, 4096, 9000 B), timeout 14, retry 7");
  for (const n of sizes.length ? sizes : [1000, 4096]) show(await runLoad(n));
}

// GET latency and throughput: RDMA READ into the server's table vs the same store served over
// plain TCP by Node, both servers in one child process on this machine, measured in interleaved
// rounds in one run. Prints each round and the ratios (min / median / max over rounds).
//   node examples/kv-store/bench.mjs [--rounds N] [--keys N] [--server A] [--client B] [--tcp-port N] [--store-port N]
// (the two TCP ports default to free ones: the bench runs its own server and reads them from its first line)
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { KvClient, MAX_OUTSTANDING } from "./client.mjs";
import { TcpKvClient } from "./tcp-store.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const ROUNDS = Number(opt("rounds", 5));
const KEYS = Number(opt("keys", 1000));
const SERVER = opt("server", "127.0.0.1");
const CLIENT = opt("client", "127.0.0.2");
const TCP_PORT = Number(opt("tcp-port", 0));
const STORE_PORT = Number(opt("store-port", 0));
const LAT_OPS = 1000;
const TPUT_OPS = 4000;
if (![ROUNDS, KEYS].every((n) => Number.isInteger(n) && n > 0)) throw new Error("--rounds and --keys take positive integers");

const server = spawn(process.execPath, [fileURLToPath(new URL("cli.mjs", import.meta.url)), "serve", "--address", SERVER, "--tcp-port", String(TCP_PORT), "--store-port", String(STORE_PORT)], { stdio: ["ignore", "pipe", "inherit"] });
// its first line names the ports: "kv-store: RDMA on A (UDP 4791, control TCP N), plain TCP store on M"
const ports = await new Promise((ok, fail) => {
  let out = "";
  server.stdout.on("data", (d) => {
    out += d;
    const m = /control TCP (\d+)\), plain TCP store on (\d+)/.exec(out);
    if (m) ok({ control: Number(m[1]), store: Number(m[2]) });
  });
  server.once("exit", (c) => fail(new Error(`server exited ${c}`)));
});

const rdma = await KvClient.connect({ address: CLIENT, server: SERVER, tcpPort: ports.control });
const tcp = await TcpKvClient.connect({ server: SERVER, port: ports.store });
const key = (i) => `user:${i}`;
const value = (i) => `value ${i} `.padEnd(64, String.fromCharCode(97 + (i % 26)));
for (let i = 0; i < KEYS; i++) {
  await rdma.put(key(i), value(i));
  await tcp.put(key(i), value(i));
}

let seed = 12345;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % KEYS);

async function latency(c) {
  const t = [];
  for (let n = 0; n < LAT_OPS; n++) {
    const i = rnd();
    const t0 = process.hrtime.bigint();
    const v = await c.get(key(i));
    t.push(Number(process.hrtime.bigint() - t0) / 1000);
    if (v !== value(i)) throw new Error(`wrong value for ${key(i)}: ${v}`);
  }
  t.sort((a, b) => a - b);
  return t[t.length >> 1];
}

async function throughput(c) {
  let next = 0;
  let bad = 0;
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    while (next < TPUT_OPS) {
      next++;
      const i = rnd();
      if ((await c.get(key(i))) !== value(i)) bad++;
    }
  };
  await Promise.all(Array.from({ length: MAX_OUTSTANDING }, worker));
  if (bad) throw new Error(`${bad} wrong values`);
  return TPUT_OPS / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[0].toFixed(2)} / ${s[s.length >> 1].toFixed(2)} / ${s[s.length - 1].toFixed(2)}`;
};
const latRatio = [];
const tputRatio = [];
console.log(`kv-store bench: ${KEYS} keys, 64-byte values; per round ${LAT_OPS} sequential GETs (median latency) and ${TPUT_OPS} GETs with ${MAX_OUTSTANDING} in flight`);
for (let r = 0; r < ROUNDS; r++) {
  // alternate which goes first, so neither always runs on a warmer machine
  const order = r % 2 ? [tcp, rdma] : [rdma, tcp];
  const lat = new Map();
  const tput = new Map();
  for (const c of order) lat.set(c, await latency(c));
  for (const c of order) tput.set(c, await throughput(c));
  latRatio.push(lat.get(rdma) / lat.get(tcp));
  tputRatio.push(tput.get(rdma) / tput.get(tcp));
  console.log(
    `round ${r + 1}: GET latency RDMA ${lat.get(rdma).toFixed(1)} µs, TCP ${lat.get(tcp).toFixed(1)} µs; ` +
      `throughput RDMA ${Math.round(tput.get(rdma))}/s, TCP ${Math.round(tput.get(tcp))}/s`,
  );
}
console.log(`GET latency, RDMA / TCP (min / median / max over ${ROUNDS} rounds): ${stats(latRatio)}  (above 1: RDMA slower)`);
console.log(`GET throughput, RDMA / TCP (min / median / max over ${ROUNDS} rounds): ${stats(tputRatio)}  (above 1: RDMA faster)`);
rdma.close();
tcp.close();
server.kill("SIGTERM");

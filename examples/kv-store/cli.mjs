// A small CLI over the key-value store.
//   node examples/kv-store/cli.mjs serve [--address A] [--tcp-port N] [--store-port N]
//   node examples/kv-store/cli.mjs put <key> <value> [--address B] [--server A] [--tcp-port N]
//   node examples/kv-store/cli.mjs get <key> [--address B] [--server A] [--tcp-port N]
// `serve` runs the RDMA server and, for the bench, the plain TCP store beside it; it prints one
// line with both ports and stops on SIGINT/SIGTERM (or after --duration seconds).
import { startKvServer } from "./server.mjs";
import { startTcpStore } from "./tcp-store.mjs";
import { KvClient } from "./client.mjs";

const USAGE = `usage: cli.mjs serve [--address A] [--tcp-port N] [--store-port N] [--duration S]
       cli.mjs put <key> <value> [--address B] [--server A] [--tcp-port N]
       cli.mjs get <key> [--address B] [--server A] [--tcp-port N]
`;

function parse(argv) {
  const flags = {};
  const pos = [];
  const known = ["address", "server", "tcp-port", "store-port", "duration"];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      pos.push(a);
      continue;
    }
    const name = a.slice(2);
    if (!known.includes(name)) throw new Error(`unknown flag ${a}`);
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    flags[name] = v;
  }
  for (const k of ["tcp-port", "store-port", "duration"]) {
    if (flags[k] !== undefined && !/^\d+$/.test(flags[k])) throw new Error(`--${k}: not a number: ${flags[k]}`);
  }
  return { flags, pos };
}

async function main(argv) {
  const { flags, pos } = parse(argv);
  const [cmd, key, value] = pos;
  const tcpPort = Number(flags["tcp-port"] ?? 7471);
  if (cmd === "serve" && pos.length === 1) {
    const address = flags.address ?? "127.0.0.1";
    const kv = await startKvServer({ address, tcpPort });
    const store = await startTcpStore({ address, port: Number(flags["store-port"] ?? 7472) });
    console.log(`kv-store: RDMA on ${address} (UDP 4791, control TCP ${kv.tcpPort}), plain TCP store on ${store.port}`);
    let timer;
    await new Promise((r) => {
      process.once("SIGINT", r);
      process.once("SIGTERM", r);
      if (flags.duration) timer = setTimeout(r, Number(flags.duration) * 1000);
    });
    clearTimeout(timer);
    await kv.close();
    await store.close();
    console.log(`kv-store: stopped after ${kv.stats.puts} PUTs`);
    return 0;
  }
  if ((cmd === "get" && pos.length === 2) || (cmd === "put" && pos.length === 3)) {
    const c = await KvClient.connect({ address: flags.address ?? "127.0.0.2", server: flags.server ?? "127.0.0.1", tcpPort });
    try {
      if (cmd === "put") {
        await c.put(key, value);
        console.log("OK");
        return 0;
      }
      const v = await c.get(key);
      if (v === undefined) {
        console.error(`${key}: not found`);
        return 1;
      }
      console.log(v);
      return 0;
    } finally {
      c.close();
    }
  }
  process.stderr.write(USAGE);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e) => {
    console.error(`kv-store: ${e.message}`);
    process.exitCode = e.message.startsWith("unknown flag") || e.message.includes("needs a value") || e.message.includes("not a number") ? 2 : 1;
  },
);

#!/usr/bin/env node
// Runs shell text in the interop guest through its control shell (TCP 7000,
// one busybox /bin/sh per connection). Must run inside the harness's network
// namespace (guest.sh exec does that).
//   node guestexec.mjs GUEST_IP 'shell text' [timeout_s]
// Prints the text's stdout+stderr and exits with the remote shell's status of
// its last command (124 when the time bound expired, 125 when the guest cannot
// be reached).
import { connect } from "node:net";

const [host, text, timeoutArg] = process.argv.slice(2);
if (!host || text === undefined) {
  process.stderr.write("usage: guestexec.mjs GUEST_IP 'shell text' [timeout_s]\n");
  process.exit(2);
}
const timeoutMs = Number(timeoutArg ?? 60) * 1000;
const MARKER = "__SOFTROCE_GUESTEXEC_RC__";

function attempt() {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port: 7000 });
    const chunks = [];
    s.once("connect", () => {
      s.setTimeout(0);
      s.end(`exec 2>&1\n${text}\necho ${MARKER}$?\nexit\n`);
    });
    s.setTimeout(3000, () => s.destroy(new Error("connect timeout")));
    s.on("data", (d) => chunks.push(d));
    s.once("error", reject);
    s.once("close", (hadError) => {
      if (!hadError) resolve(Buffer.concat(chunks).toString("utf8"));
    });
  });
}

const deadline = Date.now() + timeoutMs;
const timer = setTimeout(() => {
  process.stderr.write(`guestexec: no answer after ${timeoutMs / 1000} s\n`);
  process.exit(124);
}, timeoutMs);
let out;
for (;;) {
  try {
    out = await attempt();
    break;
  } catch (e) {
    if (Date.now() > deadline - 500) {
      process.stderr.write(`guestexec: cannot reach ${host}:7000 (${e.message})\n`);
      process.exit(125);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
clearTimeout(timer);
const at = out.lastIndexOf(MARKER);
if (at < 0) {
  process.stdout.write(out);
  process.stderr.write("guestexec: the guest shell ended without a status\n");
  process.exit(125);
}
process.stdout.write(out.slice(0, at));
process.exit(Number.parseInt(out.slice(at + MARKER.length), 10) || 0);

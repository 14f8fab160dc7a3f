// The same store served the ordinary way, for comparison: a Node TCP server with a Map, one
// text line per request ("GET key", "PUT key value") and per answer ("VALUE v", "NONE", "OK").
import net from "node:net";
import { checkKeyValue } from "./table.mjs";

export async function startTcpStore({ address = "127.0.0.1", port = 7472 } = {}) {
  const map = new Map();
  const server = net.createServer((s) => {
    let buf = "";
    s.setNoDelay(true);
    s.setEncoding("utf8");
    s.on("error", () => {});
    s.on("data", (d) => {
      buf += d;
      if (buf.length > 1 << 20) return void s.destroy();
      let nl;
      let out = "";
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const sp = line.indexOf(" ");
        const cmd = sp < 0 ? line : line.slice(0, sp);
        const rest = sp < 0 ? "" : line.slice(sp + 1);
        if (cmd === "GET") out += map.has(rest) ? `VALUE ${map.get(rest)}\n` : "NONE\n";
        else if (cmd === "PUT") {
          const sp2 = rest.indexOf(" ");
          if (sp2 <= 0) out += "ERR\n";
          else {
            map.set(rest.slice(0, sp2), rest.slice(sp2 + 1));
            out += "OK\n";
          }
        } else out += "ERR\n";
      }
      if (out) s.write(out);
    });
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, address, ok);
  });
  return { port: server.address().port, close: () => new Promise((r) => server.close(r)) };
}

export class TcpKvClient {
  static connect({ server = "127.0.0.1", port = 7472 } = {}) {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, server);
      s.once("error", reject);
      s.once("connect", () => resolve(new TcpKvClient(s)));
    });
  }

  constructor(socket) {
    this.s = socket;
    this.s.setNoDelay(true);
    this.s.setEncoding("utf8");
    this.waiting = [];
    this.buf = "";
    this.s.on("data", (d) => {
      this.buf += d;
      let nl;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.waiting.shift()?.(line);
      }
    });
  }

  #ask(line) {
    return new Promise((r) => {
      this.waiting.push(r);
      this.s.write(line + "\n");
    });
  }

  async get(key) {
    checkKeyValue(key);
    const a = await this.#ask(`GET ${key}`);
    return a.startsWith("VALUE ") ? a.slice(6) : undefined;
  }

  async put(key, value) {
    checkKeyValue(key, value);
    if (/[\s]/.test(key) || value.includes("\n")) throw new RangeError("the TCP store takes keys without spaces and values without newlines");
    if ((await this.#ask(`PUT ${key} ${value}`)) !== "OK") throw new Error(`PUT ${key} refused`);
  }

  close() {
    this.s.destroy();
  }
}

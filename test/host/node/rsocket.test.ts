// rsockets as Node streams (host/node/rsocket.ts): two devices on 127.0.15.81 / 127.0.15.82 (UDP
// 4791, as two hosts), an RdmaCm on each. Bytes piped through both ways and checked, a half close
// (end(): the peer reads to its end and still writes), reads and writes at once on one socket,
// a refused connect, a listener closed while its connections go on.
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import {
  openDevice, openRdmaCm, Qp1Transport, rsConnect, rsListen, RsocketError, udpPortOf, type Device, type RsocketSocket,
} from "../../../host/node/index.js";
import { cmPair } from "../support/rdma-cm.js";

const A = "127.0.15.81";
const B = "127.0.15.82";
let devs: Device[] = [];

afterEach(() => {
  for (const d of devs) d.close();
  devs = [];
});

/** A device on each address (UDP 4791, as two hosts), an RdmaCm on each. */
/** A device and an rdma_cm on each of A and B. */
const pair = () => cmPair(A, B, devs);

/** A listener on A's `port`, a client from B connected to it, and the socket the listener accepted. */
async function connected(port: number) {
  const { rcmA, rcmB } = await pair();
  const server = rsListen(rcmA, { address: A, port });
  const accepted = server.accept();
  const client = await rsConnect(rcmB, { address: A, port });
  return { server, client, s: await accepted };
}

/** Everything a readable gives until its end ('data' and 'end': a for-await loop would destroy the Duplex, its writing side too). */
function readAll(s: RsocketSocket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on("data", (c: Uint8Array) => parts.push(Buffer.from(c)));
  return new Promise((resolve, reject) => {
    s.once("end", () => resolve(Buffer.concat(parts)));
    s.once("error", reject);
  });
}

describe("rsockets as Node Duplex streams", () => {
  it("an echo: 3 MB written by the client (end() after), echoed back by the server as it reads, every byte as sent; both ends close", async () => {
    const { server, client, s } = await connected(7501);
    expect(s.remoteAddress.address).toBe(B);
    expect(client.remoteAddress).toEqual({ address: A, port: 7501 });
    s.pipe(s); // echo: the server's end() follows the client's
    const data = randomBytes(3_000_000);
    const back = readAll(client);
    client.end(data);
    expect(Buffer.compare(await back, data)).toBe(0);
    client.destroy();
    await once(s, "close");
    server.close();
  }, 60_000);

  it("a half close: the side that ended reads on while the other writes; then both end", async () => {
    const { server, client, s } = await connected(7502);
    server.close(); // the listener goes; its connection does not
    client.end("question");
    expect((await readAll(s)).toString()).toBe("question");
    const reply = readAll(client);
    for (let i = 0; i < 100; i++) s.write(`answer ${i}\n`);
    s.end();
    expect((await reply).toString().split("\n").length).toBe(101);
    for (const x of [client, s]) x.destroy();
  }, 30_000);

  it("both ways at once on each socket (a write and a read waiting on the one CQ): 1 MB each way, each as sent", async () => {
    const { server, client, s } = await connected(7503);
    const [x, y] = [randomBytes(1 << 20), randomBytes(1 << 20)];
    const [gotByServer, gotByClient] = [readAll(s), readAll(client)];
    client.end(x);
    s.end(y);
    expect(Buffer.compare(await gotByServer, x)).toBe(0);
    expect(Buffer.compare(await gotByClient, y)).toBe(0);
    for (const z of [client, s]) z.destroy();
    server.close();
  }, 30_000);

  it("a connect nobody listens for: RsocketError ECONNREFUSED; a listener on a taken port: the rdma_cm's EADDRINUSE", async () => {
    const { rcmA, rcmB } = await pair();
    const e = await rsConnect(rcmB, { address: A, port: 7504 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RsocketError);
    expect((e as RsocketError).errno).toBe("ECONNREFUSED");
    const server = rsListen(rcmA, { address: A, port: 7505 });
    expect(() => rsListen(rcmA, { address: A, port: 7505 })).toThrow(/EADDRINUSE/);
    server.close();
    await expect(server.accept()).rejects.toThrow(/raccept: the listener is closed/);
  }, 30_000);

  it("keepalive 1 (SO_KEEPALIVE, TCP_KEEPIDLE 1 s) on the client: an idle connection carries an RS_CTRL_KEEPALIVE a second, the server takes each unanswered; the stream goes on after them", async () => {
    const { rcmA, rcmB } = await pair();
    const server = rsListen(rcmA, { address: A, port: 7508 });
    const accepted = server.accept();
    const client = await rsConnect(rcmB, { address: A, port: 7508 }, { keepalive: 1 });
    const s = await accepted;
    await new Promise((r) => setTimeout(r, 2500));
    const sent = client.rstream.keepalivesSent;
    expect(sent).toBeGreaterThanOrEqual(2);
    expect(sent).toBeLessThanOrEqual(3);
    expect(s.rstream.keepalivesSent).toBe(0);
    s.pipe(s);
    const back = readAll(client);
    client.end("after the keepalives");
    expect((await back).toString()).toBe("after the keepalives");
    expect(s.rstream.keepalivesReceived).toBeGreaterThanOrEqual(sent);
    client.destroy();
    server.close();
  }, 30_000);

  it("two devices on ports the kernel chose (port 0), each RdmaCm told the other's (peerUdpPort): the answers to a peer's MADs reach its port — an echo, and a REJ for a port nobody listens on", async () => {
    const devA = await openDevice({ address: A, port: 0 });
    const devB = await openDevice({ address: B, port: 0 });
    devs.push(devA, devB);
    const [portA, portB] = [udpPortOf(devA), udpPortOf(devB)];
    if (portA === undefined || portB === undefined) throw new Error("a device bound no UDP port");
    expect([portA, portB]).not.toContain(4791);
    const ports: Record<string, number> = { [A]: portA, [B]: portB };
    const peerUdpPort = (address: string) => ports[address] ?? 4791;
    // openDevice opened each QP1 already: options for it now are refused, not dropped
    expect(() => Qp1Transport.of(devA, { peerUdpPort: () => 1 })).toThrow(/QP1 is open already, peerUdpPort cannot apply/);
    const rcmA = openRdmaCm({ devices: [{ device: devA, mad: Qp1Transport.of(devA) }], peerUdpPort });
    const rcmB = openRdmaCm({ devices: [{ device: devB, mad: Qp1Transport.of(devB) }], peerUdpPort });
    const refused = await rsConnect(rcmB, { address: A, port: 7507 }).catch((x: unknown) => x);
    expect((refused as RsocketError).errno).toBe("ECONNREFUSED");
    const server = rsListen(rcmA, { address: A, port: 7506 });
    server.accept().then((s) => s.pipe(s));
    const client = await rsConnect(rcmB, { address: A, port: 7506 });
    const back = readAll(client);
    client.end("over the kernel's ports");
    expect((await back).toString()).toBe("over the kernel's ports");
    client.destroy();
    server.close();
  }, 30_000);
});

import { describe, expect, it } from "vitest";
import dgram from "node:dgram";
import { once } from "node:events";
import { IP_PMTUDISC_DO, sockoptAddon, sockoptUnavailableReason } from "../../../host/node/sockopt.js";

// npm install builds the addon on Linux; a machine where it failed gets a
// clear reason, and this suite fails rather than skipping.
const addon = sockoptAddon();

/** dgram adopts a bound descriptor; 'listening' may fire during bind(), so listen first. */
function adopt(type: "udp4" | "udp6", fd: number): Promise<dgram.Socket> {
  const s = dgram.createSocket(type);
  const listening = once(s, "listening");
  s.bind({ fd });
  return listening.then(() => s);
}

describe("socket addon", () => {
  it("is built and loadable", () => {
    expect(sockoptUnavailableReason()).toBeUndefined();
    expect(typeof addon?.openUdpSocket).toBe("function");
  });

  it("opens an IPv4 socket with PMTU discovery DO that dgram adopts and uses", async () => {
    const fd = addon!.openUdpSocket(4, "127.0.0.1", 0, false);
    expect(addon!.socketOptions(fd).pmtuDiscover).toBe(IP_PMTUDISC_DO);
    const a = await adopt("udp4", fd);
    const b = dgram.createSocket("udp4");
    b.bind(0, "127.0.0.1");
    await once(b, "listening");
    const got = once(b, "message");
    a.send(Buffer.from("ping"), b.address().port, "127.0.0.1");
    const [msg, rinfo] = (await got) as [Buffer, dgram.RemoteInfo];
    expect(msg.toString()).toBe("ping");
    expect(rinfo.port).toBe(a.address().port);
    a.close();
    b.close();
  });

  it("opens an IPv6 socket that accepts UDP checksum 0", async () => {
    const fd = addon!.openUdpSocket(6, "::1", 0, false);
    expect(addon!.socketOptions(fd).noCheck6Rx).toBe(1);
    const s = await adopt("udp6", fd);
    expect(s.address().address).toBe("::1");
    s.close();
  });

  it("refuses bad arguments with clear errors", () => {
    expect(() => addon!.openUdpSocket(5 as 4, "127.0.0.1", 0, false)).toThrow(/family must be 4 or 6/);
    expect(() => addon!.openUdpSocket(4, "::1", 0, false)).toThrow(/not an address of that family/);
    expect(() => addon!.openUdpSocket(4, "127.0.0.1", 70000, false)).toThrow(/port 0..65535/);
    const fd = addon!.openUdpSocket(4, "127.0.0.1", 0, false);
    return adopt("udp4", fd).then((s) => {
      const port = s.address().port;
      expect(() => addon!.openUdpSocket(4, "127.0.0.1", port, false)).toThrow(/bind: Address already in use/);
      s.close();
    });
  });
});

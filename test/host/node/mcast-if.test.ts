// Every socket the Node host sends from (the dgram-adopted one, the native datapath's, the per-QP
// source-port pool's) sends IPv6 multicast out of the interface holding its address
// (IPV6_MULTICAST_IF by that interface's index), as the IPv4 ones do with IP_MULTICAST_IF.
import { afterEach, expect, it } from "vitest";
import { closeSync } from "node:fs";
import { sockoptAddon } from "../../../host/node/sockopt.js";
import { openDevice, udpLinkOf } from "../../../host/node/index.js";
import { NativeUdpLink } from "../../../host/node/native-link.js";
import type { Device } from "../../../host/core/verbs/device.js";

const addon = sockoptAddon()!;
const opened: Device[] = [];
afterEach(() => {
  while (opened.length) opened.pop()!.close();
});

it("an IPv6 socket from the addon has IPV6_MULTICAST_IF set to its address's interface; an IPv4 one has none", () => {
  const fd6 = addon.openUdpSocket(6, "::1", 0, false);
  const fd4 = addon.openUdpSocket(4, "127.0.13.30", 0, false);
  try {
    const lo = addon.socketOptions(fd6).multicastIf6;
    expect(lo).toBeGreaterThan(0); // the loopback interface's index
    expect(addon.socketOptions(fd4).multicastIf6).toBe(-1);
  } finally {
    closeSync(fd6);
    closeSync(fd4);
  }
});

it("the native datapath's own socket on ::1 has it too", async () => {
  const d = await openDevice({ address: "::1", port: 0, datapath: "native" });
  opened.push(d);
  const link = udpLinkOf(d);
  expect(link).toBeInstanceOf(NativeUdpLink);
  const fd = (link as NativeUdpLink).datapath.info().fd;
  const ref = addon.openUdpSocket(6, "::1", 0, false);
  try {
    expect(addon.socketOptions(fd).multicastIf6).toBe(addon.socketOptions(ref).multicastIf6);
    expect(addon.socketOptions(fd).multicastIf6).toBeGreaterThan(0);
  } finally {
    closeSync(ref);
  }
});

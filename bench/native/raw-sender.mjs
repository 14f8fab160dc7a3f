// The raw node:dgram baseline's sender, shared by bench/fast-path.mjs and bench/udp-goodput.mjs:
// `total` datagrams of `size` bytes to `address`:`port`, at most `window` ahead of the count the
// sink reports back (a u32 LE per reply). Lost datagrams leave that count behind for good, so after
// 20 ms without progress the window opens. Resolves after the last send has had 100 ms to land.
import dgram from "node:dgram";
import { once } from "node:events";

export async function sendRawWindowed({ address, port, size, total, window }) {
  const sock = dgram.createSocket("udp4");
  sock.bind(0, address);
  await once(sock, "listening");
  const payload = Buffer.alloc(size, 0xab);
  let sent = 0, acked = 0, lastProgress = performance.now(), wake;
  sock.on("message", (m) => {
    const n = m.readUInt32LE(0);
    if (n > acked) (acked = n), (lastProgress = performance.now());
    wake?.();
  });
  while (sent < total) {
    while (sent < total && sent - acked < window) {
      sock.send(payload, port, address);
      sent++;
    }
    await new Promise((r) => {
      wake = r;
      setTimeout(r, 5);
    });
    wake = undefined;
    if (performance.now() - lastProgress > 20) (acked = sent - (sent % 32)), (lastProgress = performance.now());
  }
  await new Promise((r) => setTimeout(r, 100));
  sock.close();
}

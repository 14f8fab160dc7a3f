// softroce rcopy as rdma-core's (librdmacm/examples/rcopy.c) over softroce's rsockets: two processes
// on 127.0.15.71 / 127.0.15.72 (UDP 4791, this suite's own loopback addresses). A file copied and
// compared byte for byte, the server's lines and the client's; paths outside the server's --dir
// answered EACCES with nothing written; rcopy's messages; what it refuses.
import { chmodSync, closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statfsSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { useCli } from "../support/cli-process.js";
import { formatHdr, openMsg, parseHdr, RcopyCmd, rcopyPerf } from "../../../host/cli/rcopy.js";

const { start } = useCli("cli-test-rcopy");
const SERVER = "127.0.15.71";
const CLIENT = "127.0.15.72";
const tmp = mkdtempSync(join(tmpdir(), "softroce-rcopy-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("rcopy's messages", () => {
  it("msg_hdr: version, command, len, data, id in 16 bytes, little-endian; read back as written", () => {
    const h = { version: 0, command: RcopyCmd.WRITE | RcopyCmd.RESP, len: 16, data: 13, id: 0x0102030405060708n };
    const b = formatHdr(h);
    expect([...b]).toEqual([0, 0x83, 16, 0, 13, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
    expect(parseHdr(b)).toEqual(h);
  });

  it("the open request: the path NUL-terminated, padded as rcopy pads it ((strlen + 8) & ~7), the mode in data", () => {
    const m = openMsg("a.bin", 0o100644);
    expect(m.length).toBe(16 + 8);
    expect(parseHdr(m)).toEqual({ version: 0, command: RcopyCmd.OPEN, len: 24, data: 0o100644, id: 0n });
    expect([...m.subarray(16)]).toEqual([...Buffer.from("a.bin"), 0, 0, 0]);
    // 8 characters take 16 bytes: the NUL always fits
    expect(openMsg("abcdefgh", 0).length).toBe(16 + 16);
  });

  it("show_perf's line", () => {
    expect(rcopyPerf(3_000_000, 30_000)).toBe("3000000 bytes in 0.03 seconds = 0.80 Gb/sec\n");
  });
});

describe("softroce rcopy, two processes over rsockets", () => {
  it("copies a 3 MB file byte for byte under the server's --dir; refuses an absolute path and one that climbs out (EACCES, nothing written); both print rcopy's lines", async () => {
    const dir = mkdtempSync(join(tmp, "srv-"));
    const src = join(tmp, "src.bin");
    const bytes = randomBytes(3_000_000);
    writeFileSync(src, bytes);
    chmodSync(src, 0o4755); // setuid: the client sends st_mode whole, as rcopy's; the server keeps the permission bits only
    const server = start("rcopy", "--address", SERVER, "--dir", dir, "--serve", "3", "-p", "7431", "--timeout", "60");
    await new Promise((r) => setTimeout(r, 500));
    const client = (dst: string) => start("rcopy", src, `${SERVER}:${dst}`, "--address", CLIENT, "-p", "7431", "--timeout", "30");
    const ok = client("copy.bin");
    expect(await ok.done, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^opening\.\.\.transferring\.\.\.closing\.\.\.done\n3000000 bytes in \d+\.\d\d seconds = \d+\.\d\d Gb\/sec\n$/);
    expect(Buffer.compare(readFileSync(join(dir, "copy.bin")), bytes)).toBe(0);
    expect((statSync(join(dir, "copy.bin")).mode & 0o7777).toString(8)).toBe((0o755 & ~process.umask()).toString(8));
    for (const bad of [join(tmp, "evil.bin"), "../evil.bin"]) {
      const c = client(bad);
      expect(await c.done).toBe(1);
      expect(c.stdout).toBe("opening...");
      expect(c.stderr).toBe(`rcopy: the server could not open ${bad}: errno 13\n`);
    }
    expect(await server.done, server.stderr).toBe(0);
    expect(server.stdout).toBe(
      `waiting for connection...client: ${CLIENT}\nopening: copy.bin, transferring...3000000 bytes...closing...done\n` +
      `waiting for connection...client: ${CLIENT}\nopening: ${join(tmp, "evil.bin")}, refused: not under ${dir} (--dir)\n` +
      `waiting for connection...client: ${CLIENT}\nopening: ../evil.bin, refused: not under ${dir} (--dir)\n`,
    );
    expect(readdirSync(tmp).filter((f) => f.startsWith("evil"))).toEqual([]);
    expect(readdirSync(dir)).toEqual(["copy.bin"]);
  }, 90_000);

  it("a server whose --dir does not exist says so and exits 1 before it listens", async () => {
    const server = start("rcopy", "--address", SERVER, "--dir", join(tmp, "no-such-dir"), "-p", "7436", "--timeout", "20");
    expect(await server.done).toBe(1);
    expect(server.stderr).toMatch(new RegExp(`^rcopy: --dir ${join(tmp, "no-such-dir")}: ENOENT: no such file or directory`));
    expect(server.stdout).toBe("");
  }, 30_000);

  it("a source that cannot be read: a clear line and exit 1, the server left waiting for the next client", async () => {
    const server = start("rcopy", "--address", SERVER, "--dir", tmp, "--serve", "1", "-p", "7432", "--timeout", "20");
    await new Promise((r) => setTimeout(r, 500));
    const c = start("rcopy", join(tmp, "no-such-file"), `${SERVER}:x`, "--address", CLIENT, "-p", "7432", "--timeout", "20");
    expect(await c.done).toBe(1);
    expect(c.stderr).toMatch(/^rcopy: .*no-such-file: ENOENT: no such file or directory/);
    server.child.kill("SIGTERM");
  }, 30_000);

  it("the server's --dir holds: a symlink there is not followed (ELOOP), a directory reached through one out of --dir is refused (EACCES), a size beyond the free space is ENOSPC (no sparse file that large); nothing written outside", async () => {
    const dir = mkdtempSync(join(tmp, "guard-"));
    const outside = mkdtempSync(join(tmp, "outside-"));
    writeFileSync(join(outside, "victim"), "untouched");
    symlinkSync(join(outside, "victim"), join(dir, "link"));
    symlinkSync(outside, join(dir, "away"));
    mkdirSync(join(dir, "sub"));
    const src = join(tmp, "small.bin");
    writeFileSync(src, "new bytes");
    // a sparse source larger than the server's file system has free: the size is what the client sends first
    const free = statfsSync(dir);
    const huge = join(tmp, "huge.bin");
    const hugeFd = openSync(huge, "w");
    ftruncateSync(hugeFd, free.bavail * free.bsize + 2 ** 30);
    closeSync(hugeFd);
    try {
      const server = start("rcopy", "--address", SERVER, "--dir", dir, "--serve", "4", "-p", "7433", "--timeout", "60");
      await new Promise((r) => setTimeout(r, 500));
      const client = (from: string, dst: string) => start("rcopy", from, `${SERVER}:${dst}`, "--address", CLIENT, "-p", "7433", "--timeout", "30");
      for (const [dst, errno] of [["link", 40], ["away/victim", 13]] as const) {
        const c = client(src, dst);
        expect(await c.done).toBe(1);
        expect(c.stderr).toBe(`rcopy: the server could not open ${dst}: errno ${errno}\n`);
      }
      const ok = client(src, "sub/copy");
      expect(await ok.done, ok.stderr).toBe(0);
      expect(readFileSync(join(dir, "sub/copy"), "utf8")).toBe("new bytes");
      const big = client(huge, "big");
      expect(await big.done).not.toBe(0);
      expect(await server.done, server.stderr).toBe(0);
      expect(server.stdout).toContain(`opening: away/victim, refused: not under ${dir} (--dir)\n`);
      expect(server.stdout).toMatch(/opening: big, transferring\.\.\.\d+ bytes\.\.\.\.\.\.more than the \d+ bytes free\n/);
      expect(statSync(join(dir, "big")).size).toBe(0);
      expect(readFileSync(join(outside, "victim"), "utf8")).toBe("untouched");
      expect(readdirSync(outside)).toEqual(["victim"]);
    } finally {
      rmSync(huge, { force: true });
    }
  }, 60_000);

  it("refuses what it cannot do: a client without a server, an IPv6 server (rcopy splits at the first ':'), --dir on a client", async () => {
    for (const [args, re] of [
      [["file-only"], /a client names a source file and server\[:destination\]/],
      [["f", "::1"], /the server must be a numeric IPv4 address, got ''/],
      [["f", "host.example:x"], /the server must be a numeric IPv4 address, got 'host.example'/],
      [["f", "127.0.0.1", "--dir", "/tmp"], /--dir and --serve are the server's/],
    ] as const) {
      const r = start("rcopy", ...args);
      expect(await r.done, r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
    }
  });
});

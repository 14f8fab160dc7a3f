// The panels beside the ladder: the selected packet as a header tree and hex
// (the selected field's bytes highlighted), each QP's state, the CQ entries and
// the memory regions before and after with changed bytes marked.
import type { DecodedPacket } from "./api.js";
import { type Side, wcOpcodeName, wcStatusName } from "./session.js";
import type { Run } from "./run.js";

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
const hex2 = (b: number) => b.toString(16).padStart(2, "0");

/** Header groups in wire order, with the titles the tree shows. */
const GROUPS: [string, string][] = [
  ["ip", "Internet Protocol version 4"],
  ["ipv6", "Internet Protocol version 6"],
  ["udp", "User Datagram Protocol"],
  ["infiniband.bth", "Base Transport Header (BTH)"],
  ["infiniband.reth", "RDMA Extended Transport Header (RETH)"],
  ["infiniband.aeth", "ACK Extended Transport Header (AETH)"],
  ["infiniband.atomiceth", "Atomic Extended Transport Header (AtomicETH)"],
  ["infiniband.atomicacketh", "Atomic ACK Extended Transport Header"],
  ["infiniband.deth", "Datagram Extended Transport Header (DETH)"],
  ["infiniband.immdt", "Immediate Data (ImmDt)"],
  ["infiniband.ieth", "Invalidate Extended Transport Header (IETH)"],
  ["infiniband.feth", "Flush Extended Transport Header (FETH)"],
  ["payload", "Payload"],
  ["icrc", "Invariant CRC (ICRC)"],
];

function groupOf(ranges: Record<string, readonly [number, number]>, start: number): string | undefined {
  let best: string | undefined;
  for (const [g] of GROUPS) {
    const r = ranges[g];
    if (r && start >= r[0] && start < r[1]) best = g; // later (inner) groups win
  }
  return best;
}

export class PacketView {
  private bytes: Uint8Array = new Uint8Array(0);
  private decoded: DecodedPacket | undefined;

  constructor(
    private readonly tree: HTMLElement,
    private readonly hex: HTMLElement,
  ) {
    tree.addEventListener("click", (e) => {
      const b = (e.target as Element).closest("[data-field]");
      if (b) this.highlight(b.getAttribute("data-field")!);
    });
    tree.addEventListener("focusin", (e) => {
      const b = (e.target as Element).closest("[data-field]");
      if (b) this.highlight(b.getAttribute("data-field")!);
    });
  }

  clear(text = "Select a packet in the ladder (click, or focus the ladder and use ↑ ↓)."): void {
    this.tree.innerHTML = `<p class="hint">${esc(text)}</p>`;
    this.hex.innerHTML = "";
    this.decoded = undefined;
  }

  show(s: Run, i: number): void {
    const d = s.decode(i);
    this.decoded = d;
    this.bytes = s.packetBytes(i);
    const rec = s.packets[i];
    const r = d.record;
    const lines: string[] = [];
    const fate = rec.fate + (rec.reason ? ` (scripted${rec.label ? `: ${rec.label}` : ""})` : "");
    lines.push(
      `<div class="frame">Frame ${i + 1}: ${this.bytes.length} bytes, sent at ${rec.sentAt.toFixed(3)} µs` +
        (rec.deliveredAt !== undefined ? `, arrived at ${rec.deliveredAt.toFixed(3)} µs` : "") +
        ` — <b class="fate ${rec.fate}">${esc(fate)}</b>` +
        (s.note(i) ? ` — <span class="note">${esc(s.note(i)!)}</span>` : "") +
        `</div>`,
    );
    if (d.error || !d.ranges) {
      lines.push(`<p class="error">${esc(d.error ?? "not decoded")}</p>`);
      const known = Object.keys(r).filter((k) => !k.startsWith("frame."));
      if (known.length) lines.push(`<ul>${known.map((k) => `<li><span class="k">${esc(k)}</span>: <span class="v">${esc(showValue(k, r[k]))}</span></li>`).join("")}</ul>`);
    } else {
      const ranges = d.ranges;
      const byGroup = new Map<string, string[]>();
      for (const k of Object.keys(r)) {
        if (k.startsWith("frame.") || !ranges[k]) continue;
        const g = k === "payload_len" ? "payload" : (groupOf(ranges, ranges[k][0]) ?? "payload");
        if (!byGroup.has(g)) byGroup.set(g, []);
        byGroup.get(g)!.push(k);
      }
      for (const [g, title] of GROUPS) {
        if (!ranges[g]) continue;
        const [a, b] = ranges[g];
        lines.push(`<details open><summary><button type="button" data-field="${g}">${esc(title)}</button> <span class="span">${b > a ? `bytes ${a}–${b - 1}` : "empty"}</span></summary><ul>`);
        for (const k of byGroup.get(g) ?? []) {
          lines.push(`<li><button type="button" data-field="${esc(k)}"><span class="k">${esc(k)}</span>: <span class="v">${esc(showValue(k, r[k]))}</span></button></li>`);
        }
        lines.push(`</ul></details>`);
      }
    }
    this.tree.innerHTML = lines.join("");
    this.renderHex();
  }

  private renderHex(): void {
    const b = this.bytes;
    const out: string[] = [];
    for (let o = 0; o < b.length; o += 16) {
      out.push(`<div class="hexrow"><span class="off">${o.toString(16).padStart(4, "0")}</span>`);
      for (let i = o; i < Math.min(o + 16, b.length); i++) out.push(`<span class="b" data-i="${i}">${hex2(b[i])}</span>`);
      out.push(`</div>`);
    }
    this.hex.innerHTML = out.join("");
  }

  /** Marks the bytes of a field (or a header) in the hex view. */
  highlight(field: string): void {
    const r = this.decoded?.ranges?.[field];
    this.tree.querySelectorAll("[data-field].on").forEach((el) => el.classList.remove("on"));
    this.tree.querySelector(`[data-field="${CSS.escape(field)}"]`)?.classList.add("on");
    this.hex.querySelectorAll(".b.on").forEach((el) => el.classList.remove("on"));
    if (!r) return;
    let first: Element | undefined;
    for (let i = r[0]; i < r[1]; i++) {
      const el = this.hex.querySelector(`.b[data-i="${i}"]`);
      if (el) {
        el.classList.add("on");
        first ??= el;
      }
    }
    (first as HTMLElement | undefined)?.scrollIntoView?.({ block: "nearest" });
  }
}

const HEXY = new Set(["infiniband.bth.p_key", "infiniband.bth.destqp", "infiniband.reth.r_key", "infiniband.deth.q_key", "infiniband.ieth", "infiniband.immdt", "infiniband.feth", "infiniband.bth.psn", "infiniband.aeth.syndrome", "ip.id", "ip.checksum", "udp.checksum"]);

function showValue(k: string, v: unknown): string {
  if (typeof v === "number" && HEXY.has(k)) return `0x${v.toString(16)} (${v})`;
  return String(v);
}

/** Each QP as the trace ring (rxe's state names) and ibv_query_qp show it. */
export function renderQps(el: HTMLElement, s: Run): void {
  const sides: Side[] = ["A", "B"];
  const st = sides.map((x) => s.sideState(x));
  const row = (name: string, f: (i: number) => string, title = "") =>
    `<tr><th scope="row"${title ? ` title="${esc(title)}"` : ""}>${esc(name)}</th>${st.map((_, i) => `<td>${esc(f(i))}</td>`).join("")}</tr>`;
  const psn = (v: number | undefined) => (v === undefined ? "—" : `0x${v.toString(16)} (${v})`);
  el.innerHTML =
    `<table class="qps"><thead><tr><th></th>${sides.map((x) => `<th scope="col">${x} (${esc(s.address(x))})</th>`).join("")}</tr></thead><tbody>` +
    row("QP number", (i) => `0x${st[i].qpn.toString(16)}`) +
    row("QP state", (i) => st[i].qpState, "ibv_qp_state") +
    row("requester state", (i) => st[i].req ?? "—", "rxe_req.c: the state the requester last entered") +
    row("completer state", (i) => st[i].comp ?? "—", "rxe_comp.c: the state the completer last entered") +
    row("responder state", (i) => st[i].resp ?? "—", "rxe_resp.c: the state the responder last entered") +
    row("next PSN to send", (i) => psn(st[i].nextPsn), "from the requester's last trace record") +
    row("last request PSN handled", (i) => psn(st[i].respPsn), "from the responder's last trace record") +
    row("sq_psn / rq_psn (ibv_query_qp)", (i) => `${psn(st[i].sqPsn)} / ${psn(st[i].rqPsn)}`) +
    row("packets sent", (i) => String(st[i].sent)) +
    row("packets received", (i) => String(st[i].received)) +
    row("packets dropped on receive", (i) => String(st[i].dropped)) +
    row("retransmit timers fired", (i) => String(st[i].retransmitTimers)) +
    row("RNR timers fired", (i) => String(st[i].rnrTimers)) +
    row("completions", (i) => String(st[i].completions)) +
    `</tbody></table>`;
}

/** The CQ table's columns (ibv_wc's fields); each cell carries its column's name for the phone layout (style.css). */
const CQ_COLUMNS = ["t (µs)", "CQ", "wr_id", "status", "opcode", "byte_len", "qp_num", "imm_data"] as const;

export function renderCq(el: HTMLElement, s: Run): void {
  if (!s.completions.length) {
    el.innerHTML = `<p class="hint">No completions yet.</p>`;
    return;
  }
  const cells = (values: string[], titles: string[] = []) =>
    values.map((v, i) => `<td data-label="${esc(CQ_COLUMNS[i]!)}"${titles[i] ? ` title="${esc(titles[i]!)}"` : ""}>${v}</td>`).join("");
  // ibv_poll_cq: only wr_id, status, qp_num and vendor_err are valid in a completion with an error
  const invalid = "not valid in a completion with an error (ibv_poll_cq)";
  el.innerHTML =
    `<table class="cq"><thead><tr>${CQ_COLUMNS.map((c) => `<th scope="col">${esc(c)}</th>`).join("")}</tr></thead><tbody>` +
    s.completions
      .map((c) => {
        const bad = c.wc.status !== 0;
        const values = [
          c.tUs.toFixed(1), c.side, String(c.wc.wrId), wcStatusName(c.wc.status), bad ? "—" : wcOpcodeName(c.wc.opcode), bad ? "—" : String(c.wc.byteLen),
          `0x${c.wc.qpNum.toString(16)}`, c.wc.wcFlags & 2 ? "0x" + c.wc.immData.toString(16) : "",
        ];
        return `<tr class="${bad ? "bad" : "ok"}">${cells(values, bad ? ["", "", "", "", invalid, invalid] : [])}</tr>`;
      })
      .join("") +
    `</tbody></table>`;
}

/** Before and after of each memory region around its first changed byte; changed bytes marked. */
export function renderMemory(el: HTMLElement, s: Run): void {
  const out: string[] = [];
  for (const side of ["A", "B"] as Side[]) {
    const before = s.before[side];
    const after = s.after(side);
    if (!before || !after) {
      out.push(`<h3>${side}'s memory region: not visible from this page (the live peer's)</h3>`);
      continue;
    }
    let changed = 0;
    let first = -1;
    for (let i = 0; i < after.length; i++) {
      if (after[i] !== before[i]) {
        changed++;
        if (first < 0) first = i;
      }
    }
    out.push(`<h3>${side}'s memory region (${after.length} bytes): ${changed} byte${changed === 1 ? "" : "s"} changed</h3>`);
    if (first < 0) continue;
    const start = Math.max(0, (first & ~15) - 16);
    const end = Math.min(after.length, start + 128);
    out.push(`<div class="mem"><div class="memcol"><h4>before</h4>${memHex(before, after, start, end, false)}</div><div class="memcol"><h4>after</h4>${memHex(before, after, start, end, true)}</div></div>`);
  }
  el.innerHTML = out.join("");
}

function memHex(before: Uint8Array, after: Uint8Array, start: number, end: number, isAfter: boolean): string {
  const out: string[] = [];
  const src = isAfter ? after : before;
  for (let o = start; o < end; o += 16) {
    out.push(`<div class="hexrow"><span class="off">${o.toString(16).padStart(6, "0")}</span>`);
    for (let i = o; i < Math.min(o + 16, end); i++) out.push(`<span class="b${before[i] !== after[i] ? " changed" : ""}">${hex2(src[i])}</span>`);
    out.push(`</div>`);
  }
  return out.join("");
}

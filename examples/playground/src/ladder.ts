// The ladder (sequence) diagram: A's lane on the left, B's on the right, one row
// per datagram or timer, in virtual-time order. Virtualised: only the rows in
// view (plus a margin) are drawn, so 10,000 packets scroll as easily as ten.
import type { Side } from "./session.js";
import type { Run } from "./run.js";

export const ROW_H = 26;
const MARGIN_ROWS = 10;

export type LadderRow = { kind: "packet"; index: number; t: number } | { kind: "timer"; side: Side; timer: "retransmit" | "rnr"; t: number };

/** Packets and timers merged by time (a timer sorts before the packets it caused at the same time). */
export function ladderRows(s: Run): LadderRow[] {
  const rows: LadderRow[] = [];
  const pk = s.packets;
  const tm = s.timers;
  let i = 0;
  let j = 0;
  while (i < pk.length || j < tm.length) {
    if (j < tm.length && (i >= pk.length || tm[j].tUs <= pk[i].sentAt)) {
      rows.push({ kind: "timer", side: tm[j].side, timer: tm[j].kind, t: tm[j].tUs });
      j++;
    } else {
      rows.push({ kind: "packet", index: i, t: pk[i].sentAt });
      i++;
    }
  }
  return rows;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** A short name for a BTH opcode: "WRITE First", "ACK", "READ resp Last". */
export function shortOpcode(name: string): string {
  return name
    .replace(/^(RC|UC|UD) /, "")
    .replace("RDMA Read Response", "READ resp")
    .replace("RDMA Read Request", "READ req")
    .replace("RDMA Write", "WRITE")
    .replace("Acknowledge", "ACK")
    .replace("Immediate", "Imm")
    .replace("Atomic ACK", "Atomic ACK");
}

/** One packet's label: opcode, PSN, AETH (syndrome meaning and MSN). */
export function packetLabel(s: Run, i: number): string {
  const r = s.decode(i).record;
  if (r.error !== undefined) return `undecodable: ${r.error}`;
  let t = `${shortOpcode(String(r.opcode_name))}  PSN ${Number(r["infiniband.bth.psn"])}`;
  if (r["infiniband.aeth.syndrome"] !== undefined) t += `  ${r.aeth_meaning}  MSN ${r["infiniband.aeth.msn"]}`;
  return t;
}

const FATE_TEXT: Record<string, string> = {
  delivered: "",
  lost: "lost",
  duplicate: "duplicate",
  corrupted: "corrupted: bad ICRC, dropped",
  reordered: "reordered",
  unroutable: "unroutable",
  dropped: "dropped by the receiver",
};

export class Ladder {
  rows: LadderRow[] = [];
  selected = -1;
  private session: Run | undefined;
  private readonly spacer: HTMLDivElement;
  private readonly svgHost: HTMLDivElement;
  private drawnKey = "";

  constructor(
    readonly el: HTMLElement,
    private readonly onSelect: (row: LadderRow | undefined, rowIndex: number) => void,
  ) {
    el.innerHTML = "";
    this.spacer = document.createElement("div");
    this.spacer.className = "ladder-spacer";
    this.svgHost = document.createElement("div");
    this.svgHost.className = "ladder-rows";
    this.spacer.append(this.svgHost);
    el.append(this.spacer);
    el.addEventListener("scroll", () => this.draw());
    el.addEventListener("click", (e) => {
      const g = (e.target as Element).closest("[data-row]");
      if (g) this.select(Number(g.getAttribute("data-row")));
    });
    el.addEventListener("keydown", (e) => this.key(e));
    new ResizeObserver(() => this.draw(true)).observe(el);
  }

  setSession(s: Run): void {
    this.session = s;
    this.selected = -1;
    this.update();
  }

  /** Picks up new rows; keeps the view at the bottom when it was there. */
  update(): void {
    if (!this.session) return;
    const atBottom = this.el.scrollTop + this.el.clientHeight >= this.spacer.offsetHeight - ROW_H * 2;
    this.rows = ladderRows(this.session);
    this.spacer.style.height = `${this.rows.length * ROW_H + 8}px`;
    if (atBottom && this.selected < 0) this.el.scrollTop = this.spacer.offsetHeight;
    this.draw(true);
  }

  select(i: number): void {
    if (i < 0 || i >= this.rows.length) return;
    this.selected = i;
    const top = i * ROW_H;
    if (top < this.el.scrollTop) this.el.scrollTop = top;
    else if (top + ROW_H > this.el.scrollTop + this.el.clientHeight) this.el.scrollTop = top + ROW_H - this.el.clientHeight;
    this.draw(true);
    this.onSelect(this.rows[i], i);
  }

  private key(e: KeyboardEvent): void {
    const page = Math.max(1, Math.floor(this.el.clientHeight / ROW_H) - 1);
    const moves: Record<string, number> = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page, j: 1, k: -1 };
    let to: number | undefined;
    if (e.key in moves) to = Math.min(this.rows.length - 1, Math.max(0, (this.selected < 0 ? -1 : this.selected) + moves[e.key]));
    else if (e.key === "Home") to = 0;
    else if (e.key === "End") to = this.rows.length - 1;
    if (to === undefined) return;
    e.preventDefault();
    this.select(to);
  }

  /** Draws the rows in view; `force` redraws even when the window did not move. */
  draw(force = false): void {
    const s = this.session;
    if (!s) return;
    const width = Math.max(280, this.el.clientWidth - 4);
    const first = Math.max(0, Math.floor(this.el.scrollTop / ROW_H) - MARGIN_ROWS);
    const last = Math.min(this.rows.length, Math.ceil((this.el.scrollTop + this.el.clientHeight) / ROW_H) + MARGIN_ROWS);
    const key = `${first}:${last}:${width}:${this.selected}:${this.rows.length}`;
    if (!force && key === this.drawnKey) return;
    this.drawnKey = key;
    const xa = 70;
    const xb = width - 70;
    const h = (last - first) * ROW_H;
    const parts: string[] = [];
    parts.push(`<line class="lane" x1="${xa}" y1="0" x2="${xa}" y2="${h}"/><line class="lane" x1="${xb}" y1="0" x2="${xb}" y2="${h}"/>`);
    for (let r = first; r < last; r++) {
      const row = this.rows[r];
      const y = (r - first) * ROW_H;
      const mid = y + ROW_H / 2 + 4;
      const sel = r === this.selected ? " selected" : "";
      const time = `<text class="time" x="4" y="${mid}">${row.t.toFixed(1)}</text>`;
      if (row.kind === "timer") {
        const x = row.side === "A" ? xa : xb;
        const label = row.timer === "rnr" ? "RNR timer fired" : "retransmit timer fired";
        parts.push(
          `<g class="row timer${sel}" data-row="${r}"><rect class="hit" x="0" y="${y}" width="${width}" height="${ROW_H}"/>${time}` +
            `<circle cx="${x}" cy="${y + ROW_H / 2}" r="6"/><text x="${row.side === "A" ? x + 12 : x - 12}" y="${mid}" text-anchor="${row.side === "A" ? "start" : "end"}">${row.side}: ${label}</text></g>`,
        );
        continue;
      }
      const rec = s.packets[row.index];
      const fromA = s.fromA(row.index);
      const x1 = fromA ? xa : xb;
      const x2 = fromA ? xb : xa;
      const fate = rec.fate;
      const end = fate === "lost" ? (x1 + x2) / 2 : x2;
      const dir = fromA ? 1 : -1;
      const ay = y + ROW_H / 2 + 5;
      const head = fate === "lost"
        ? `<text class="x" x="${end}" y="${ay + 4}" text-anchor="middle">✕</text>`
        : `<path class="head" d="M${end} ${ay} l${-8 * dir} -4 v8 z"/>`;
      const note = s.note(row.index);
      const fateText = (FATE_TEXT[fate] ? ` — ${FATE_TEXT[fate]}${rec.reason ? " (scripted)" : ""}` : "") + (note ? ` — ${note}` : "");
      parts.push(
        `<g class="row pkt ${fate}${sel}" data-row="${r}"><rect class="hit" x="0" y="${y}" width="${width}" height="${ROW_H}"/>${time}` +
          `<line x1="${x1}" y1="${ay}" x2="${end}" y2="${ay}"/>${head}` +
          `<text class="label" x="${(xa + xb) / 2}" y="${y + 11}" text-anchor="middle">#${row.index + 1} ${esc(packetLabel(s, row.index))}${esc(fateText)}</text></g>`,
      );
    }
    this.svgHost.style.transform = `translateY(${first * ROW_H}px)`;
    this.svgHost.innerHTML =
      `<svg width="${width}" height="${h}" viewBox="0 0 ${width} ${h}" role="img" aria-label="ladder diagram rows ${first + 1} to ${last}">` +
      parts.join("") +
      `</svg>`;
  }
}

// What each preset must show on the wire and in the CQs: the story, not its
// incidental numbers. A packet line is its direction, BTH opcode, PSN counted from
// the run's first PSN (so the lines hold whatever first PSN, QPN or key a run draws),
// AETH syndrome when there is one (0x60 = NAK PSN sequence error, 0x62 = NAK remote
// access error, 0x2N = RNR NAK, 0x1f = ACK) and fate; then the completions, the end
// QP states, the timers that fired and the rxe states passed through. The Node tests
// and the Chromium suite check runs against these. Sequences are for the preset's
// default seed.

export interface Expected {
  /** one line per packet: "A>B 0x0a psn=+0 delivered" (+ " syn=60" when the packet has an AETH); PSNs hex, from the first */
  packets: string[];
  /** the first PSN, where it is the story (PSN wrap) */
  firstPsn?: number;
  /** completions: "A wr=1 SUCCESS" */
  completions: string[];
  /** end QP states A, B */
  qpStates: [string, string];
  /** timers that fired: "A retransmit" */
  timers: string[];
  /** what the receiver did with a packet, by frame number (1-based, as the ladder's #): notes.ts; others none */
  notes: Record<number, string>;
  /** rxe states the run must pass through, from the trace ring ("B RESP_STATE DUPLICATE_REQUEST"), and receive drops ("B PKT_RECV bad_qkey") */
  rxe: string[];
}

export const EXPECTED: Record<string, Expected> = {
  "lost-middle-packet": {
    packets: [
      "A>B 0x06 psn=+0 delivered",
      "A>B 0x07 psn=+1 lost",
      "A>B 0x07 psn=+2 delivered",
      "A>B 0x08 psn=+3 delivered",
      "B>A 0x11 psn=+1 syn=60 delivered",
      "A>B 0x07 psn=+1 delivered",
      "A>B 0x07 psn=+2 delivered",
      "A>B 0x08 psn=+3 delivered",
      "B>A 0x11 psn=+3 syn=1f delivered",
    ],
    completions: ["A wr=1 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: [],
    notes: { 3: "B: PSN out of sequence", 4: "B: out of sequence, NAK already sent: dropped", 5: "A: go back and resend" },
    rxe: ["A REQ_STATE RETRY", "A COMP_STATE ERROR RETRY", "B RESP_STATE ERR_PSN_OUT_OF_SEQ"],
  },
  "lost-ack": {
    packets: ["A>B 0x0a psn=+0 delivered", "B>A 0x11 psn=+0 syn=1f lost", "A>B 0x0a psn=+0 delivered", "B>A 0x11 psn=+0 syn=1f delivered"],
    completions: ["A wr=1 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: ["A retransmit"],
    notes: { 3: "B: duplicate" },
    rxe: ["A REQ_STATE RETRY", "A COMP_STATE ERROR RETRY", "B RESP_STATE DUPLICATE_REQUEST"],
  },
  rnr: {
    packets: [
      "A>B 0x04 psn=+0 delivered",
      "B>A 0x11 psn=+0 syn=2a delivered",
      "A>B 0x04 psn=+0 delivered",
      "B>A 0x11 psn=+0 syn=2a delivered",
      "A>B 0x04 psn=+0 delivered",
      "B>A 0x11 psn=+0 syn=1f delivered",
    ],
    completions: ["A wr=1 SUCCESS", "B wr=1000 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: ["A rnr", "A rnr"],
    notes: { 1: "B: no receive posted", 2: "A: wait (RNR), then resend", 3: "B: no receive posted", 4: "A: wait (RNR), then resend" },
    rxe: ["B RESP_STATE ERR_RNR", "A COMP_STATE RNR RETRY", "A REQ_STATE RETRY"],
  },
  "lost-read-response": {
    packets: [
      "A>B 0x0c psn=+0 delivered",
      "B>A 0x0d psn=+0 syn=1f lost",
      "B>A 0x0f psn=+1 syn=1f delivered",
      "A>B 0x0c psn=+0 delivered",
      "B>A 0x0d psn=+0 syn=1f delivered",
      "B>A 0x0f psn=+1 syn=1f delivered",
    ],
    completions: ["A wr=1 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: ["A retransmit"],
    notes: { 4: "B: duplicate" },
    rxe: ["A COMP_STATE ERROR RETRY", "A REQ_STATE RETRY", "B RESP_STATE DUPLICATE_REQUEST"],
  },
  "retry-exhausted": {
    packets: [0, 1, 2].flatMap(() => ["A>B 0x0a psn=+0 lost", "A>B 0x0a psn=+1 lost", "A>B 0x0a psn=+2 lost"]),
    completions: ["A wr=1 RETRY_EXC_ERR", "A wr=2 WR_FLUSH_ERR", "A wr=3 WR_FLUSH_ERR"],
    qpStates: ["ERR", "RTS"],
    timers: ["A retransmit", "A retransmit", "A retransmit"],
    notes: {},
    rxe: ["A COMP_STATE ERROR RETRY", "A COMP_STATE ERROR"],
  },
  "wrong-rkey": {
    packets: ["A>B 0x0a psn=+0 delivered", "B>A 0x11 psn=+0 syn=62 delivered"],
    completions: ["A wr=1 REM_ACCESS_ERR"],
    qpStates: ["ERR", "ERR"],
    timers: [],
    notes: { 1: "B: bad rkey", 2: "A: error completion" },
    rxe: ["B RESP_STATE ERR_RKEY_VIOLATION", "B RESP_STATE ERROR", "A COMP_STATE ERROR"],
  },
  "psn-wrap": {
    firstPsn: 0xfffffe,
    packets: ["A>B 0x06 psn=+0 delivered", "A>B 0x07 psn=+1 delivered", "A>B 0x07 psn=+2 delivered", "A>B 0x08 psn=+3 delivered", "B>A 0x11 psn=+3 syn=1f delivered"],
    completions: ["A wr=1 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: [],
    notes: {},
    rxe: [],
  },
  "uc-gap": {
    packets: [
      "A>B 0x20 psn=+0 delivered",
      "A>B 0x21 psn=+1 lost",
      "A>B 0x21 psn=+2 delivered",
      "A>B 0x22 psn=+3 delivered",
      "A>B 0x20 psn=+4 delivered",
      "A>B 0x21 psn=+5 delivered",
      "A>B 0x21 psn=+6 delivered",
      "A>B 0x22 psn=+7 delivered",
    ],
    completions: ["A wr=1 SUCCESS", "A wr=2 SUCCESS", "B wr=1000 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: [],
    notes: { 3: "B: PSN out of sequence", 4: "B: PSN out of sequence" },
    rxe: ["B RESP_STATE ERR_PSN_OUT_OF_SEQ"],
  },
  "ud-wrong-qkey": {
    packets: ["A>B 0x64 psn=+0 delivered"],
    completions: ["A wr=1 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: [],
    notes: { 1: "B dropped it: bad_qkey" },
    rxe: ["B PKT_RECV bad_qkey"],
  },
};

/** The first PSN of a run's trace (what packet lines count from). */
export function firstPsn(rows: readonly Record<string, unknown>[]): number {
  return rows.length ? Number(rows[0]["infiniband.bth.psn"]) : 0;
}

/** A trace() row as an Expected packet line ("A>B" when sent from `addressA`; the PSN counted from `basePsn`, modulo 2^24). */
export function packetLine(row: Record<string, unknown>, addressA: string, basePsn: number): string {
  const dir = row["ip.src"] === addressA ? "A>B" : "B>A";
  const op = "0x" + Number(row["infiniband.bth.opcode"]).toString(16).padStart(2, "0");
  const psn = ((Number(row["infiniband.bth.psn"]) - basePsn) & 0xffffff).toString(16);
  const syn = row["infiniband.aeth.syndrome"] !== undefined ? ` syn=${Number(row["infiniband.aeth.syndrome"]).toString(16)}` : "";
  return `${dir} ${op} psn=+${psn}${syn} ${String(row.fate)}`;
}

/** Every row of a trace as packet lines, PSNs counted from the trace's first. */
export function packetLines(rows: readonly Record<string, unknown>[], addressA: string): string[] {
  const base = firstPsn(rows);
  return rows.map((r) => packetLine(r, addressA, base));
}

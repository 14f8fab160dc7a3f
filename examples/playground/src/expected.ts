// What each preset must show on the wire and in the CQs: the packet sequence
// (direction, BTH opcode, PSN, AETH syndrome when there is one, fate) and the
// end state. The Node tests and the Chromium suite check runs against these.
// Sequences are for the preset's default seed; PSNs are hex.

export interface Expected {
  /** one line per packet: "A>B 0x0a psn=100 delivered" (+ " syn=60" when the packet has an AETH) */
  packets: string[];
  /** completions: "A wr=1 SUCCESS" */
  completions: string[];
  /** end QP states A, B */
  qpStates: [string, string];
  /** timers that fired: "A retransmit" */
  timers: string[];
}

export const EXPECTED: Record<string, Expected> = {
  "lost-middle-packet": {
    packets: [
      "A>B 0x06 psn=100 delivered",
      "A>B 0x07 psn=101 lost",
      "A>B 0x07 psn=102 delivered",
      "A>B 0x08 psn=103 delivered",
      "B>A 0x11 psn=101 syn=60 delivered",
      "A>B 0x07 psn=101 delivered",
      "A>B 0x07 psn=102 delivered",
      "A>B 0x08 psn=103 delivered",
      "B>A 0x11 psn=103 syn=1f delivered",
    ],
    completions: ["A wr=1 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: [],
  },
  "lost-ack": {
    packets: ["A>B 0x0a psn=100 delivered", "B>A 0x11 psn=100 syn=1f lost", "A>B 0x0a psn=100 delivered", "B>A 0x11 psn=100 syn=1f delivered"],
    completions: ["A wr=1 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: ["A retransmit"],
  },
  rnr: {
    packets: [
      "A>B 0x04 psn=100 delivered",
      "B>A 0x11 psn=100 syn=2a delivered",
      "A>B 0x04 psn=100 delivered",
      "B>A 0x11 psn=100 syn=2a delivered",
      "A>B 0x04 psn=100 delivered",
      "B>A 0x11 psn=100 syn=1f delivered",
    ],
    completions: ["A wr=1 SUCCESS", "B wr=1000 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: ["A rnr", "A rnr"],
  },
  "lost-read-response": {
    packets: [
      "A>B 0x0c psn=100 delivered",
      "B>A 0x0d psn=100 syn=1f lost",
      "B>A 0x0f psn=101 syn=1f delivered",
      "A>B 0x0c psn=100 delivered",
      "B>A 0x0d psn=100 syn=1f delivered",
      "B>A 0x0f psn=101 syn=1f delivered",
    ],
    completions: ["A wr=1 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: ["A retransmit"],
  },
  "retry-exhausted": {
    packets: [0, 1, 2].flatMap(() => ["A>B 0x0a psn=100 lost", "A>B 0x0a psn=101 lost", "A>B 0x0a psn=102 lost"]),
    completions: ["A wr=1 RETRY_EXC_ERR", "A wr=2 WR_FLUSH_ERR", "A wr=3 WR_FLUSH_ERR"],
    qpStates: ["ERR", "RTS"],
    timers: ["A retransmit", "A retransmit", "A retransmit"],
  },
  "wrong-rkey": {
    packets: ["A>B 0x0a psn=100 delivered", "B>A 0x11 psn=100 syn=62 delivered"],
    completions: ["A wr=1 REM_ACCESS_ERR"],
    qpStates: ["ERR", "ERR"],
    timers: [],
  },
  "psn-wrap": {
    packets: ["A>B 0x06 psn=fffffe delivered", "A>B 0x07 psn=ffffff delivered", "A>B 0x07 psn=0 delivered", "A>B 0x08 psn=1 delivered", "B>A 0x11 psn=1 syn=1f delivered"],
    completions: ["A wr=1 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: [],
  },
  "uc-gap": {
    packets: [
      "A>B 0x20 psn=100 delivered",
      "A>B 0x21 psn=101 lost",
      "A>B 0x21 psn=102 delivered",
      "A>B 0x22 psn=103 delivered",
      "A>B 0x20 psn=104 delivered",
      "A>B 0x21 psn=105 delivered",
      "A>B 0x21 psn=106 delivered",
      "A>B 0x22 psn=107 delivered",
    ],
    completions: ["A wr=1 SUCCESS", "A wr=2 SUCCESS", "B wr=1000 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: [],
  },
  "ud-wrong-qkey": {
    packets: ["A>B 0x64 psn=100 delivered"],
    completions: ["A wr=1 SUCCESS"],
    qpStates: ["RTS", "RTS"],
    timers: [],
  },
};

/** A trace() row as an Expected packet line ("A>B" when sent from `addressA`). */
export function packetLine(row: Record<string, unknown>, addressA: string): string {
  const dir = row["ip.src"] === addressA ? "A>B" : "B>A";
  const op = "0x" + Number(row["infiniband.bth.opcode"]).toString(16).padStart(2, "0");
  const psn = Number(row["infiniband.bth.psn"]).toString(16);
  const syn = row["infiniband.aeth.syndrome"] !== undefined ? ` syn=${Number(row["infiniband.aeth.syndrome"]).toString(16)}` : "";
  return `${dir} ${op} psn=${psn}${syn} ${String(row.fate)}`;
}

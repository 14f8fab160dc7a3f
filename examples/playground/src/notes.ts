// What the receiving side did with each packet, for the ladder: the packets the wire delivered
// are matched, in order, to the receiving device's PKT_RECV records in its trace ring (same
// destination, BTH opcode and PSN), and the responder's or completer's states entered for that
// packet (same device time) say whether it was taken, or why not: "B: PSN out of sequence", "B:
// duplicate", "B dropped it: bad_qkey". Incremental: each update() looks only at what is new.
import type { DecodedPacket, TraceEvent, TraceRecord } from "./api.js";
import type { Side } from "./session.js";

/** Responder states worth a word on the ladder (rxe's names), and the word. */
const RESP_NOTES: Record<string, string> = {
  ERR_PSN_OUT_OF_SEQ: "PSN out of sequence",
  DUPLICATE_REQUEST: "duplicate",
  ERR_RNR: "no receive posted",
  ERR_RKEY_VIOLATION: "bad rkey",
  ERR_LENGTH: "bad length",
  ERR_MISSING_OPCODE_FIRST: "not the next opcode",
  ERR_MISSING_OPCODE_LAST_C: "not the next opcode",
  ERR_UNSUPPORTED_OPCODE: "unsupported opcode",
  ERR_MISALIGNED_ATOMIC: "misaligned atomic",
  ERR_TOO_MANY_RDMA_ATM_REQ: "too many READs/atomics",
  ERR_RECV_OVERFLOW: "receive too small",
  ERR_MALFORMED_WQE: "malformed receive",
};
/** Completer states worth a word (a response that makes the requester act). */
const COMP_NOTES: Record<string, string> = {
  "ERROR RETRY": "go back and resend",
  "RNR RETRY": "wait (RNR), then resend",
  ERROR: "error completion",
};

interface RunView {
  readonly packets: readonly TraceRecord[];
  readonly events: readonly (TraceEvent & { side: Side })[];
  /** the side's IP address (the datagrams' dst) */
  address(side: Side): string;
  decode(i: number): DecodedPacket;
}

export class ReceiverNotes {
  private readonly notes: (string | undefined)[] = [];
  private packetsSeen = 0;
  private eventsSeen = 0;
  /** packets on their way, by "dst|opcode|psn": indices, each as many times as it arrives */
  private readonly waiting = new Map<string, number[]>();
  /** per side, the packet its last PKT_RECV matched and that record's time */
  private readonly current: Partial<Record<Side, { index: number; t: number; last?: string }>> = {};

  /** The note for packet i ("B: PSN out of sequence"), once update() has seen its arrival. */
  note(i: number): string | undefined {
    return this.notes[i];
  }

  update(run: RunView): void {
    const { packets, events } = run;
    for (; this.packetsSeen < packets.length; this.packetsSeen++) {
      const r = packets[this.packetsSeen];
      const arrivals = r.fate === "lost" || r.fate === "unroutable" ? 0 : r.fate === "duplicate" ? 2 : 1;
      if (!arrivals) continue;
      const rec = run.decode(this.packetsSeen).record;
      const key = `${r.datagram.dst}|${Number(rec["infiniband.bth.opcode"])}|${Number(rec["infiniband.bth.psn"])}`;
      for (let n = 0; n < arrivals; n++) {
        const q = this.waiting.get(key);
        if (q) q.push(this.packetsSeen);
        else this.waiting.set(key, [this.packetsSeen]);
      }
    }
    for (; this.eventsSeen < events.length; this.eventsSeen++) {
      const e = events[this.eventsSeen];
      if (e.kind === "PKT_RECV") {
        const key = `${run.address(e.side)}|${e.opcode}|${e.psn}`;
        const q = this.waiting.get(key);
        const index = q?.shift();
        if (q && !q.length) this.waiting.delete(key);
        if (index === undefined) {
          this.current[e.side] = undefined;
          continue;
        }
        this.current[e.side] = { index, t: e.timeUs };
        if (e.verdict !== undefined && e.verdict !== "ok") this.notes[index] ??= `${e.side} dropped it: ${e.verdict}`;
        continue;
      }
      const cur = this.current[e.side];
      if (!cur || e.timeUs !== cur.t || e.state === undefined) continue;
      let word = e.kind === "RESP_STATE" ? RESP_NOTES[e.state] : e.kind === "COMP_STATE" ? COMP_NOTES[e.state] : undefined;
      // rxe's check_psn: a later PSN after the NAK was sent goes straight to cleanup
      if (e.kind === "RESP_STATE" && e.state === "CLEANUP" && cur.last === "CHK_PSN") word = "out of sequence, NAK already sent: dropped";
      if (e.kind === "RESP_STATE") cur.last = e.state;
      if (word) this.notes[cur.index] ??= `${e.side}: ${word}`;
    }
  }
}

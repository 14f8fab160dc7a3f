// The presets: each a short lesson in how RoCE's transports behave when
// something goes wrong, written for someone meeting PSNs and AETHs for the
// first time. A preset is settings plus the twist that makes the lesson happen
// (a scripted drop, a wrong key, a late receive).
import { DEFAULT_SETTINGS, type Settings } from "./settings.js";
import type { Plan } from "./session.js";

export interface Scenario {
  name: string;
  title: string;
  /** what to watch for, for a learner (a few sentences) */
  explain: string;
  settings: Partial<Settings>;
  twist: Omit<Plan, "settings">;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "lost-middle-packet",
    title: "A lost middle packet: PSN sequence error NAK, then go-back-N",
    explain:
      "A writes 4 KiB to B's memory with RDMA WRITE. At a path MTU of 1024 bytes that is four packets, numbered by the " +
      "Packet Sequence Number (PSN) in each packet's Base Transport Header. The wire loses the second. When B sees the " +
      "third, its PSN is not the one B expects, so B answers with a NAK whose AETH syndrome says \"PSN sequence error\" " +
      "and carries the PSN it wants; the fourth it drops without a second NAK (one NAK per gap). A goes back to that PSN " +
      "and sends everything from there again (go-back-N); B then acknowledges the last packet and A completes the write.",
    settings: { op: "write", size: 4096, mtu: 1024 },
    twist: { script: [{ dir: "A>B", what: "data", nth: 2, label: "2nd data packet" }] },
  },
  {
    name: "lost-ack",
    title: "A lost ACK: the request is sent again, the responder replays",
    explain:
      "A one-packet RDMA WRITE reaches B, and B's ACK is lost on the way back. A cannot tell a lost request from a lost " +
      "ACK, so when its retransmit timer fires it sends the same request, with the same PSN, again. B has already " +
      "executed it: it recognises a duplicate request (its PSN is older than the one B expects) and does not write " +
      "twice — it only sends the ACK again. The MSN (message sequence number) in the AETH counts completed messages.",
    settings: { op: "write", size: 1024, mtu: 1024 },
    twist: { timeout: 8, script: [{ dir: "B>A", what: "ack", nth: 1, label: "the ACK" }] },
  },
  {
    name: "rnr",
    title: "Receiver not ready: RNR NAK while no receive is posted, then recovery",
    explain:
      "A SEND needs a receive buffer at B, and B posts its receive late (at 500 µs). Until then B answers every SEND with " +
      "an RNR NAK (\"receiver not ready\"): an AETH syndrome whose low bits say how long A should wait. A's RNR timer " +
      "waits that long and A sends again; once the receive is there, B accepts the message, places it, and acknowledges.",
    settings: { op: "send", size: 1024, mtu: 1024 },
    twist: { postRecvAtUs: 500, minRnrTimer: 10, rnrRetry: 7 },
  },
  {
    name: "lost-read-response",
    title: "A lost READ response: the requester asks again",
    explain:
      "A reads 2 KiB from B's memory: one RDMA READ request, answered by two READ response packets (First and Last). The " +
      "first response is lost. A's completer sees a response PSN later than it expects and retries: it sends the READ " +
      "request again, starting at the missing PSN, and B — which keeps no state for READs — reads the memory again and " +
      "answers.",
    settings: { op: "read", size: 2048, mtu: 1024 },
    twist: { script: [{ dir: "B>A", what: "read-response", nth: 1, label: "1st READ response" }] },
  },
  {
    name: "retry-exhausted",
    title: "Retry exhaustion: RETRY_EXC_ERR, then flush errors",
    explain:
      "Every packet from A is lost (the link to B is down). A's retransmit timer fires and A retries, up to retry_cnt " +
      "(here 2) times. Then A gives up: the first work request completes with RETRY_EXC_ERR, the QP moves to the error " +
      "state, and every other queued request completes with WR_FLUSH_ERR (\"flushed\") without being sent.",
    settings: { op: "write", size: 1024, mtu: 1024, depth: 3 },
    twist: { timeout: 6, retryCnt: 2, script: [{ dir: "A>B", what: "any", nth: 1, count: Infinity, label: "link down" }] },
  },
  {
    name: "wrong-rkey",
    title: "A wrong rkey: remote access error, both QPs to ERR",
    explain:
      "A writes to B's memory naming it with a wrong remote key (rkey). B checks the key in the RETH against its memory " +
      "region, finds no match, and answers with a NAK whose syndrome says \"remote access error\". A's request " +
      "completes with REM_ACCESS_ERR and A's QP moves to ERR; B's QP moves to ERR as well (an RC responder does that on " +
      "an access violation).",
    settings: { op: "write", size: 1024, mtu: 1024 },
    twist: { wrongRkey: true },
  },
  {
    name: "psn-wrap",
    title: "PSN wrap: 24-bit sequence numbers roll over",
    explain:
      "PSNs are 24 bits wide. A starts at 0xfffffe, so its four WRITE packets carry PSNs 0xfffffe, 0xffffff, 0 and 1. " +
      "Both ends compare PSNs modulo 2^24, so nothing special happens: B accepts them in order and acknowledges PSN 1.",
    settings: { op: "write", size: 4096, mtu: 1024 },
    twist: { psnA: 0xfffffe },
  },
  {
    name: "uc-gap",
    title: "UC after a gap: the rest of the message is dropped",
    explain:
      "Unreliable Connected (UC) has PSNs but no ACKs and no retransmission. A sends two 4 KiB messages; the second " +
      "packet of the first is lost. B notices the PSN gap and drops the rest of that message: no receive completes for " +
      "it. The next message starts with a First packet, so B resynchronises and delivers it into the same receive " +
      "buffer. A completes both sends — UC never tells the sender.",
    settings: { op: "uc-send", size: 4096, mtu: 1024, depth: 2 },
    twist: { script: [{ dir: "A>B", what: "data", nth: 2, label: "2nd packet" }] },
  },
  {
    name: "ud-wrong-qkey",
    title: "UD with a wrong Q_Key: dropped silently",
    explain:
      "Unreliable Datagram (UD) messages carry a DETH with a Q_Key, and B accepts a datagram only if the Q_Key matches " +
      "its QP's. A sends with the wrong one: B drops the datagram (its counters say why), completes no receive, and " +
      "sends nothing back. A's send still completes successfully — UD never tells the sender.",
    settings: { op: "ud-send", size: 256, mtu: 1024 },
    twist: { wrongQkey: true },
  },
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}

/** The settings a preset starts from (defaults, then the preset's). */
export function scenarioBase(name: string): Settings {
  const sc = findScenario(name);
  return { ...DEFAULT_SETTINGS, ...(sc?.settings ?? {}), scenario: sc ? name : "" };
}

/** The plan for `settings` (with its preset's twist when it names one). */
export function planFor(settings: Settings): Plan {
  const sc = findScenario(settings.scenario);
  return { settings, ...(sc?.twist ?? {}) };
}

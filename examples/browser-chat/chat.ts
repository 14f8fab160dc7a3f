// browser-chat: two browser tabs exchange messages over RC SEND. Each tab is a softroce device
// whose packets go through the gateway (WebSocket tunnel, docs/TUNNEL.md); the two tabs meet
// in a room on the server that served the page (POST /rendezvous: QPN, PSN, GID, port),
// connect their QPs as rc_pingpong does, and from then on every message is one RC SEND.
import { openTunnelDevice, connectQp, Access, QpType, WrOpcode, SendFlags, type WorkCompletion } from "../../host/browser/index.js";

const MSG_MAX = 1024;
const RECVS = 16;
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export interface ChatState {
  state: "idle" | "joining" | "waiting" | "connected" | "error";
  messages: { from: string; text: string }[];
  error?: string;
}
const chat: ChatState = { state: "idle", messages: [] };
(window as unknown as { chat: ChatState }).chat = chat;

function setState(s: ChatState["state"], detail = ""): void {
  chat.state = s;
  document.body.dataset.state = s;
  $("status").textContent = detail ? `${s}: ${detail}` : s;
}

function show(from: string, text: string): void {
  chat.messages.push({ from, text });
  const li = document.createElement("li");
  const b = document.createElement("b");
  b.textContent = `${from}: `;
  li.append(b, document.createTextNode(text));
  $("log").append(li);
  li.scrollIntoView({ block: "nearest" });
}

async function post(path: string, body: unknown): Promise<unknown> {
  const r = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${(await r.text()).trim()}`);
  return r.json();
}

async function join(name: string, room: string): Promise<void> {
  setState("joining");
  const live = (await (await fetch("/live.json")).json()) as { gateway: string | null };
  if (!live.gateway) throw new Error("the server runs no gateway (softroce playground --no-live?)");
  const { device } = await openTunnelDevice(live.gateway);
  const pd = device.allocPd();
  const cq = device.createCq(64);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: RECVS, maxSendSge: 1, maxRecvSge: 1 } });
  const mr = pd.regMr((RECVS + 1) * MSG_MAX, Access.LOCAL_WRITE);
  const psn = Math.floor(Math.random() * 0xffffff);
  const me = { qpn: qp.qpNum, psn, gid: device.queryGid(0), port: device.limits.port, name };
  setState("waiting", `room ${room}, QPN ${qp.qpNum}`);
  let peer: (typeof me) | null = null;
  for (let i = 0; i < 600 && !peer; i++) {
    peer = ((await post("/rendezvous", { room, me })) as { peer: typeof me | null }).peer;
    if (!peer) await new Promise((r) => setTimeout(r, 250));
  }
  if (!peer) throw new Error("nobody joined the room");
  // timeout 16 (268 ms per try): a tab in the background may be slow to answer
  connectQp(qp, { qpNum: peer.qpn, psn: peer.psn, gid: peer.gid, port: peer.port }, { sqPsn: psn, timeout: 16, retryCnt: 7, rnrRetry: 7, minRnrTimer: 1 });
  qp.postRecv(Array.from({ length: RECVS }, (_, i) => ({ wrId: BigInt(i), sgList: [mr.sge(i * MSG_MAX, MSG_MAX)] })));
  const peerName = peer.name || "peer";
  setState("connected", `with ${peerName} (QPN ${peer.qpn})`);

  const dec = new TextDecoder();
  const enc = new TextEncoder();
  let sending = Promise.resolve();
  const onWc = (wc: WorkCompletion) => {
    if (wc.status !== 0) {
      setState("error", `completion status ${wc.status}`);
      return;
    }
    if (wc.opcode === 128) {
      const i = Number(wc.wrId);
      show(peerName, dec.decode(mr.bytes.subarray(i * MSG_MAX, i * MSG_MAX + wc.byteLen)));
      qp.postRecv({ wrId: wc.wrId, sgList: [mr.sge(i * MSG_MAX, MSG_MAX)] });
    }
  };
  void (async () => {
    for (;;) onWc(await cq.next());
  })();
  $("send").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $<HTMLInputElement>("text");
    const bytes = enc.encode(input.value);
    if (bytes.length === 0) return;
    if (bytes.length > MSG_MAX) {
      $("status").textContent = `a message is at most ${MSG_MAX} bytes`;
      return;
    }
    const text = input.value;
    input.value = "";
    sending = sending.then(() => {
      mr.bytes.set(bytes, RECVS * MSG_MAX);
      qp.postSend({ wrId: 1000n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [mr.sge(RECVS * MSG_MAX, bytes.length)] });
      show(name, text);
    });
  });
  $<HTMLButtonElement>("sendbtn").disabled = false;
}

const params = new URLSearchParams(location.search);
$<HTMLInputElement>("name").value = params.get("name") ?? `tab-${Math.floor(Math.random() * 1000)}`;
$<HTMLInputElement>("room").value = params.get("room") ?? "lobby";
const start = () => {
  $<HTMLButtonElement>("joinbtn").disabled = true;
  join($<HTMLInputElement>("name").value.slice(0, 32), $<HTMLInputElement>("room").value).catch((e: Error) => {
    chat.error = e.message;
    setState("error", e.message);
  });
};
$("join").addEventListener("submit", (e) => {
  e.preventDefault();
  start();
});
setState("idle");
if (params.get("autojoin") === "1") start();

// The playground page: controls, run loop and views over one Session. Settings live in
// the URL; `?scenario=<name>&seed=<n>&autorun=1` runs a preset at once, and
// window.softroce.playground gives tests and embedders the run's packets and completions.
import { coreModule } from "../../../host/browser/wasm-source.js";
import { Session, type Side } from "./session.js";
import { LiveSession, LIVE_OPS, type LiveInfo } from "./live.js";
import type { Run } from "./run.js";
import { SCENARIOS, findScenario, planFor, scenarioBase } from "./scenarios.js";
import { DEFAULT_SETTINGS, MTUS, OPS, OP_LABELS, parseSettings, settingsQuery, type Settings } from "./settings.js";
import { Ladder, type LadderRow } from "./ladder.js";
import { PacketView, renderCq, renderMemory, renderQps } from "./views.js";

type RunState = "loading" | "ready" | "running" | "paused" | "done" | "error";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

let mod: WebAssembly.Module;
let session: Run | undefined;
let liveInfo: LiveInfo = { gateway: null };
let live = false;
/** live mode: the page's device in a Web Worker (URL worker=0 turns it off) */
let useWorker = true;
let settings: Settings = { ...DEFAULT_SETTINGS };
let base: Settings = { ...DEFAULT_SETTINGS };
let playing = false;
let isolationText = "";
let generation = 0;

const ladder = new Ladder($("ladder"), onSelect);
const packetView = new PacketView($("tree"), $("hex"));

function setState(s: RunState): void {
  document.body.dataset.state = s;
  $("state").textContent = s;
  ($("run") as HTMLButtonElement).disabled = s === "done" || s === "running" || s === "loading";
  ($("pause") as HTMLButtonElement).disabled = s !== "running";
  ($("step") as HTMLButtonElement).disabled = s === "done" || s === "running" || s === "loading" || live;
}

function onSelect(row: LadderRow | undefined): void {
  if (!session || !row) return;
  if (row.kind === "packet") packetView.show(session, row.index);
  else packetView.clear(`${row.side}'s ${row.timer === "rnr" ? "RNR" : "retransmit"} timer fired at ${row.t.toFixed(3)} µs: the requester sends again from the oldest unacknowledged PSN.`);
}

// ---- controls ----
function fillControls(): void {
  const sc = $("scenario") as HTMLSelectElement;
  sc.innerHTML = `<option value="">free play</option>` + SCENARIOS.map((s) => `<option value="${s.name}">${s.name}: ${s.title}</option>`).join("");
  ($("op") as HTMLSelectElement).innerHTML = OPS.map((o) => `<option value="${o}">${OP_LABELS[o]}</option>`).join("");
  ($("mtu") as HTMLSelectElement).innerHTML = MTUS.map((m) => `<option value="${m}">${m}</option>`).join("");
}

function showSettings(): void {
  ($("scenario") as HTMLSelectElement).value = settings.scenario;
  for (const k of ["op", "size", "mtu", "depth", "loss", "dup", "reorder", "corrupt", "delay", "seed"] as const) {
    ($(k) as HTMLInputElement).value = String(settings[k]);
  }
  const sc = findScenario(settings.scenario);
  $("explain").textContent = sc ? sc.explain : "Free play: choose an operation, a size and faults, then run. Every packet appears in the ladder with its fate; select one to see its headers and bytes.";
  $("title").textContent = sc ? sc.title : "Free play";
}

function readControls(): Settings {
  const q = new URLSearchParams();
  for (const k of ["op", "size", "mtu", "depth", "loss", "dup", "reorder", "corrupt", "delay", "seed"] as const) q.set(k, ($(k) as HTMLInputElement).value);
  const { settings: s, problems } = parseSettings(q, settings);
  $("problems").textContent = problems.join("; ");
  return { ...s, scenario: settings.scenario };
}

function writeUrl(): void {
  const extra: Record<string, string> = live ? { live: "1", ...(useWorker ? {} : { worker: "0" }) } : {};
  const url = `${location.pathname}${settingsQuery(settings, settings.scenario ? scenarioBase(settings.scenario) : DEFAULT_SETTINGS, extra)}`;
  history.replaceState(null, "", url);
  ($("share") as HTMLAnchorElement).href = url;
}

// ---- the run ----
async function replay(): Promise<void> {
  const gen = ++generation;
  playing = false;
  setState("loading");
  session?.stop();
  try {
    session = live ? await LiveSession.create(mod, liveInfo, settings, { worker: useWorker }) : await Session.create(mod, planFor(settings));
  } catch (e) {
    $("problems").textContent = `cannot start: ${(e as Error).message}`;
    setState("error");
    return;
  }
  if (gen !== generation) return;
  ladder.setSession(session);
  packetView.clear();
  $("mode").textContent = session instanceof LiveSession ? session.threadText : isolationText;
  ($("download") as HTMLButtonElement).disabled = session instanceof LiveSession && session.bytesHidden;
  const lanes = $("lanes").children;
  lanes[0].textContent = `A ${session.address("A")}`;
  lanes[1].textContent = `B ${session.address("B")}`;
  refresh();
  setState("ready");
}

let lastPanels = 0;

/** Redraws the views; while running, the tables at most 4 times a second and the memory view not at all. */
function refresh(running = false): void {
  if (!session) return;
  ladder.update();
  $("status").textContent = session.statusText();
  const now = performance.now();
  if (running && now - lastPanels < 250) return;
  lastPanels = now;
  renderQps($("qps"), session);
  renderCq($("cq"), session);
  if (!running) renderMemory($("memory"), session);
}

function finishIfDone(): boolean {
  if (session && session.done) {
    playing = false;
    refresh();
    setState("done");
    return true;
  }
  return false;
}

function play(): void {
  if (!session || session.done) return;
  playing = true;
  setState("running");
  const gen = generation;
  const frame = () => {
    if (!playing || gen !== generation || !session) return;
    const t0 = performance.now();
    if (session.live) session.run(); // real time: collect what happened since the last frame
    else while (performance.now() - t0 < 12 && !session.done) session.run(256);
    refresh(true);
    if (finishIfDone()) return;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

function pause(): void {
  playing = false;
  if (session && !session.done) setState("paused");
}

function step(): void {
  if (!session) return;
  playing = false;
  session.step();
  refresh();
  if (!finishIfDone()) setState("paused");
}

function download(): void {
  if (!session) return;
  let bytes: Uint8Array;
  try {
    bytes = session.pcapng();
  } catch (e) {
    $("problems").textContent = (e as Error).message;
    return;
  }
  const blob = new Blob([bytes as BlobPart], { type: "application/octet-stream" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `softroce-${settings.scenario || settings.op}-seed${settings.seed}.pcapng`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function wire(): void {
  $("scenario").addEventListener("change", () => {
    const name = ($("scenario") as HTMLSelectElement).value;
    base = name ? scenarioBase(name) : { ...DEFAULT_SETTINGS };
    settings = { ...base };
    showSettings();
    writeUrl();
    void replay();
  });
  $("controls").addEventListener("change", (e) => {
    if (["scenario", "live", "worker"].includes((e.target as HTMLElement).id)) return;
    settings = readControls();
    writeUrl();
    void replay();
  });
  $("controls").addEventListener("submit", (e) => e.preventDefault());
  $("run").addEventListener("click", play);
  $("pause").addEventListener("click", pause);
  $("step").addEventListener("click", step);
  $("replay").addEventListener("click", () => void replay());
  $("live").addEventListener("change", () => {
    live = ($("live") as HTMLInputElement).checked;
    for (const k of ["loss", "dup", "reorder", "corrupt", "delay", "seed", "mtu", "scenario"]) ($(k) as HTMLInputElement).disabled = live;
    ($("worker") as HTMLInputElement).disabled = !live;
    writeUrl();
    void replay();
  });
  $("worker").addEventListener("change", () => {
    useWorker = ($("worker") as HTMLInputElement).checked;
    writeUrl();
    if (live) void replay();
  });
  $("download").addEventListener("click", download);
  document.addEventListener("keydown", (e) => {
    if ((e.target as HTMLElement).closest("input, select, textarea")) return;
    if (e.key === " " && (e.target as HTMLElement).tagName !== "BUTTON") {
      e.preventDefault();
      if (playing) pause();
      else play();
    } else if (e.key === "s") step();
    else if (e.key === "r") void replay();
  });
}

// ---- the hook for tests and embedders ----
declare global {
  interface Window {
    softroce: { playground: PlaygroundHook };
  }
}
export interface PlaygroundHook {
  trace(): Record<string, unknown>[];
  completions(): Record<string, unknown>[];
  state(): { A: unknown; B: unknown } | undefined;
  settings(): Settings;
  pcapng(): Uint8Array | undefined;
  ladderRowsInDom(): number;
  /** the timers that fired, in order: "A retransmit", "A rnr" */
  timers(): string[];
  /** the side ("A" or "B") whose QP a completion's qpNum names */
  sideOf(qpNum: number): Side | undefined;
  /** the rxe states and receive verdicts the run went through: "B RESP_STATE DUPLICATE_REQUEST", "B PKT_RECV bad_qkey" */
  rxe(): string[];
}
window.softroce = {
  playground: {
    trace: () => session?.trace() ?? [],
    completions: () => session?.completionObjects() ?? [],
    state: () => (session ? { A: session.sideState("A" as Side), B: session.sideState("B" as Side) } : undefined),
    settings: () => ({ ...settings }),
    pcapng: () => session?.pcapng(),
    ladderRowsInDom: () => document.querySelectorAll("#ladder [data-row]").length,
    timers: () => (session?.timers ?? []).map((t) => `${t.side} ${t.kind}`),
    sideOf: (qpNum) => (!session ? undefined : session.sideState("A").qpn === qpNum ? "A" : session.sideState("B").qpn === qpNum ? "B" : undefined),
    rxe: () => [...new Set((session?.events ?? []).filter((e) => e.state || e.verdict).map((e) => `${e.side} ${e.kind} ${e.kind === "PKT_RECV" ? e.verdict : e.state}`))],
  },
};

async function main(): Promise<void> {
  setState("loading");
  fillControls();
  wire();
  const params = new URLSearchParams(location.search);
  const name = params.get("scenario") ?? "";
  if (name && !findScenario(name)) $("problems").textContent = `scenario=${name}: no such preset (${SCENARIOS.map((s) => s.name).join(", ")})`;
  base = findScenario(name) ? scenarioBase(name) : { ...DEFAULT_SETTINGS };
  const parsed = parseSettings(params, base);
  settings = { ...parsed.settings, scenario: findScenario(name) ? name : "" };
  if (parsed.problems.length) $("problems").textContent = parsed.problems.join("; ");
  showSettings();
  writeUrl();
  const isolated = typeof SharedArrayBuffer !== "undefined" && globalThis.crossOriginIsolated;
  document.body.dataset.isolated = isolated ? "1" : "0";
  isolationText = isolated
    ? "cross-origin isolated: live mode runs the page's device in a Web Worker; the simulated devices run on the page's thread, on the virtual clock"
    : "not cross-origin isolated (the server sends no COOP/COEP headers): single-threaded, the devices run on the page's thread";
  $("mode").textContent = isolationText;
  useWorker = params.get("worker") !== "0";
  ($("worker") as HTMLInputElement).checked = useWorker;
  ($("worker") as HTMLInputElement).disabled = true; // until live mode is on
  // live mode: only when the server runs a gateway (softroce playground); a static server has no /live.json
  try {
    const r = await fetch("live.json");
    if (r.ok) liveInfo = (await r.json()) as LiveInfo;
  } catch {
    // no live mode
  }
  const liveBox = $("live") as HTMLInputElement;
  liveBox.disabled = !liveInfo.gateway;
  $("live-label").title = liveInfo.gateway ? `B is a Node device on UDP, reached through ${liveInfo.gateway}; ${LIVE_OPS.join(", ")}` : "needs `npx softroce playground` (its gateway)";
  if (params.get("live") === "1" && liveInfo.gateway) {
    live = true;
    liveBox.checked = true;
    for (const k of ["loss", "dup", "reorder", "corrupt", "delay", "seed", "mtu", "scenario"]) ($(k) as HTMLInputElement).disabled = true;
    ($("worker") as HTMLInputElement).disabled = false;
    writeUrl();
  }
  try {
    mod = await coreModule();
  } catch (e) {
    $("problems").textContent = `cannot load the device: ${(e as Error).message}`;
    setState("error");
    return;
  }
  await replay();
  if (params.get("autorun") === "1") play();
}

void main();

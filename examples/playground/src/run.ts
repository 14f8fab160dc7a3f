// What the views need from a run, simulated (Session) or live (LiveSession).
import type { DecodedPacket, TraceEvent, TraceRecord } from "./api.js";
import type { Completion, SideState, Side, TimerEvent, TraceRow } from "./session.js";

export interface Run {
  readonly live: boolean;
  readonly packets: readonly TraceRecord[];
  readonly timers: readonly TimerEvent[];
  readonly completions: readonly Completion[];
  /** the trace ring's events of the sides this page can see, with the side */
  readonly events: readonly (TraceEvent & { side: Side })[];
  readonly before: Partial<Record<Side, Uint8Array>>;
  readonly now: number;
  readonly done: boolean;
  fromA(i: number): boolean;
  address(side: Side): string;
  statusText(): string;
  step(): boolean;
  run(maxEvents?: number): number;
  stop(): void;
  decode(i: number): DecodedPacket;
  /** what the receiver did with packet i, when it did not simply take it ("B: PSN out of sequence"); see notes.ts */
  note(i: number): string | undefined;
  packetBytes(i: number): Uint8Array;
  sideState(side: Side): SideState;
  after(side: Side): Uint8Array | undefined;
  trace(): TraceRow[];
  completionObjects(): Record<string, unknown>[];
  pcapng(): Uint8Array;
}

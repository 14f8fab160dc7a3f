// What the views need from a run, simulated (Session) or live (LiveSession).
import type { DecodedPacket, TraceRecord } from "./api.js";
import type { Completion, SideState, Side, TimerEvent, TraceRow } from "./session.js";

export interface Run {
  readonly live: boolean;
  readonly packets: readonly TraceRecord[];
  readonly timers: readonly TimerEvent[];
  readonly completions: readonly Completion[];
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
  packetBytes(i: number): Uint8Array;
  sideState(side: Side): SideState;
  after(side: Side): Uint8Array | undefined;
  trace(): TraceRow[];
  completionObjects(): Record<string, unknown>[];
  pcapng(): Uint8Array;
}

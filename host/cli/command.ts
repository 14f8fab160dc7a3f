// What every softroce subcommand provides, and how a failure is reported: one line on stderr,
// never a stack trace.
import { UsageError } from "./args.js";

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export interface Command {
  name: string;
  summary: string;
  /** Returns the exit code: 0 ok, 1 a problem in the data, 2 usage or unreadable input. */
  run(argv: string[], io: Io): Promise<number>;
}

/**
 * A command that parses its flags into options ("help" for -h) and runs on them: what rping, ucmatose,
 * udaddy, mckey and cmtime are.
 */
export function optionsCommand<O>(
  name: string, summary: string, help: string, parse: (argv: string[], io: Io) => O | "help", run: (o: O, io: Io) => Promise<number>,
): Command {
  return {
    name,
    summary,
    async run(argv, io) {
      const o = parse(argv, io);
      if (o === "help") {
        io.out(help);
        return 0;
      }
      return run(o, io);
    },
  };
}

/** Input the command could not use (missing file, bad hex, broken capture): exit 2, one line. */
export class InputError extends Error {
  override name = "InputError";
}

export const processIo: Io = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

/** Runs a command, turning its errors into one stderr line and an exit code. */
export async function runCommand(cmd: Command, argv: string[], io: Io): Promise<number> {
  try {
    return await cmd.run(argv, io);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (e instanceof UsageError) {
      io.err(`softroce ${cmd.name}: ${msg} (see 'softroce ${cmd.name} --help')\n`);
      return 2;
    }
    if (e instanceof InputError) {
      io.err(`softroce ${cmd.name}: ${msg}\n`);
      return 2;
    }
    io.err(`softroce ${cmd.name}: internal error: ${firstLine(msg)}\n`);
    return 70;
  }
}

export function firstLine(s: string): string {
  const i = s.indexOf("\n");
  return i < 0 ? s : s.slice(0, i);
}

/** Resolves at the first SIGINT or SIGTERM: when a long-running command (gateway, playground) stops. */
export function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
}

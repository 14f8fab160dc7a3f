// The softroce command: dispatches to one module per subcommand.
import { readFileSync } from "node:fs";
import { type Command, processIo, runCommand } from "./command.js";
import { decodeCommand } from "./decode.js";
import { demoCommand } from "./demo.js";
import { perfCommand } from "./perf.js";
import { rcPingpongCommand } from "./rc_pingpong.js";
import { rpingCommand } from "./rping.js";
import { cmtimeCommand } from "./cmtime.js";
import { mckeyCommand } from "./mckey.js";
import { rdmaClientCommand, rdmaServerCommand, rdmaXclientCommand, rdmaXserverCommand } from "./rdma-server-client.js";
import { rcopyCommand } from "./rcopy.js";
import { riostreamCommand, rstreamCommand } from "./rstream.js";
import { udpongCommand } from "./udpong.js";
import { srqPingpongCommand } from "./srq_pingpong.js";
import { ucmatoseCommand } from "./ucmatose.js";
import { udaddyCommand } from "./udaddy.js";
import { ucPingpongCommand } from "./uc_pingpong.js";
import { udPingpongCommand } from "./ud_pingpong.js";
import { devinfoCommand } from "./devinfo.js";
import { gatewayCommand } from "./gateway.js";
import { playgroundCommand } from "./playground.js";

const COMMANDS: readonly Command[] = [cmtimeCommand, decodeCommand, demoCommand, devinfoCommand, gatewayCommand, mckeyCommand, perfCommand, playgroundCommand, rcopyCommand, rcPingpongCommand, rdmaClientCommand, rdmaServerCommand, rdmaXclientCommand, rdmaXserverCommand, riostreamCommand, rpingCommand, rstreamCommand, srqPingpongCommand, ucPingpongCommand, ucmatoseCommand, udaddyCommand, udPingpongCommand, udpongCommand];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    "usage: softroce <command> [flags]",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    "'softroce <command> --help' describes a command's flags; 'softroce --version' prints the version.",
    "",
  ].join("\n");
}

/** The package's version, from the package.json two levels above this bundle (dist/cli/). */
function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-V" || name === "version") {
    processIo.out(`softroce ${version()}\n`);
    return 0;
  }
  if (name === "--help" || name === "-h" || name === "help") {
    processIo.out(usage());
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    processIo.err(name === undefined ? "softroce: no command given\n" : `softroce: unknown command '${name}'\n`);
    processIo.err(usage());
    return 2;
  }
  return runCommand(cmd, rest, processIo);
}

// A closed pipe (`softroce decode ... | head`) ends the output, not the process with a trace.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await main(process.argv.slice(2));

// The softroce command: dispatches to one module per subcommand.
const [cmd] = process.argv.slice(2);
process.stderr.write(`softroce: unknown command '${cmd ?? ""}'\n`);
process.exit(2);

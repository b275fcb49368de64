// The `btrfs-ts` command line: send, receive (and receive --dump), demo.
// Mirrors btrfs-progs: messages on stderr, errors as one line `ERROR: ...`, exit status 0 or 1.
import { Command, CommanderError } from 'commander';
import { receiveCommand } from './receive-cmd.js';
import { sendCommand } from './send-cmd.js';
import { demoCommand } from './demo-cmd.js';
import { packageVersion, printError } from './common.js';

const DESCRIPTION = `btrfs send and receive, in TypeScript: send stream protocol v1, v2
(compressed data) and v3, compatible with btrfs-progs in both directions.`;

const AFTER = `
Run "btrfs-ts help COMMAND" or "btrfs-ts COMMAND --help" for the options of a command.
Exit status: 0 on success, 1 on any failure (usage errors included).`;

export function buildProgram(): Command {
  const program = new Command('btrfs-ts')
    .description(DESCRIPTION)
    .version(`btrfs-ts ${packageVersion()} (send stream protocol 1-3)`, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .addHelpText('after', AFTER)
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
      // Commander's own errors ("error: unknown option ...") become one progs-style line.
      outputError: (s, write) => write(`ERROR: ${s.replace(/^error:\s*/i, '').replace(/\s*\n\s*/g, ' ').trim()}\n`),
    });
  for (const sub of [sendCommand(), receiveCommand(), demoCommand()]) {
    sub.exitOverride().showSuggestionAfterError(true).configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(`ERROR: ${s.replace(/^error:\s*/i, '').replace(/\s*\n\s*/g, ' ').trim()}\n`),
    });
    program.addCommand(sub);
  }
  return program;
}

/** Run the CLI; resolves to the exit status. `argv` as process.argv (node, script, args...). */
export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  if (argv.length <= 2) {
    program.outputHelp({ error: true });
    return 1;
  }
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version exit 0; every parse error has already been printed as one line.
      return err.exitCode === 0 ? 0 : 1;
    }
    // The reader of our output went away (`| head`): stop quietly, as progs does on SIGPIPE.
    if ((err as NodeJS.ErrnoException)?.code === 'EPIPE') return 1;
    printError(err);
    if (process.env.BTRFS_TS_DEBUG && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    return 1;
  }
}

// The `btrfs-ts` command line: send, receive (and receive --dump), demo.
// Mirrors btrfs-progs: messages on stderr, errors as one line `ERROR: ...`, exit status 0 or 1.
import type { Command } from 'commander';
import { receiveCommand, runDump, type DumpCliOptions } from './receive-cmd.js';
import { commander, packageVersion, printError } from './common.js';

const DESCRIPTION = `btrfs send and receive, in TypeScript: send stream protocol v1, v2
(compressed data) and v3, compatible with btrfs-progs in both directions.`;

const AFTER = `
Run "btrfs-ts help COMMAND" or "btrfs-ts COMMAND --help" for the options of a command.
Exit status: 0 on success, 1 on any failure (usage errors included).`;

/** The whole command line (loads commander and every subcommand's module). */
export async function buildProgram(): Promise<Command> {
  const { Command } = commander();
  const [{ sendCommand }, { demoCommand }] = await Promise.all([import('./send-cmd.js'), import('./demo-cmd.js')]);
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
  try {
    // The usual `receive --dump` command lines run without loading commander or the other commands.
    const dump = plainDumpArgs(argv.slice(2));
    if (dump) {
      await runDump(dump);
      return 0;
    }
    const program = await buildProgram();
    if (argv.length <= 2) {
      program.outputHelp({ error: true });
      return 1;
    }
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof commander().CommanderError) {
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

/**
 * `receive --dump` with only these options: --dump, -f/--file FILE (also --file=FILE), -e, --json,
 * --ignore-unknown, -q/--quiet, --no-progress, each at most once. Anything else (help, --progress,
 * bundled flags, a DEST, errors) goes through commander, which says what is wrong.
 */
export function plainDumpArgs(args: readonly string[]): DumpCliOptions | undefined {
  if (args[0] !== 'receive') return undefined;
  const opts: DumpCliOptions = {};
  const seen = new Set<string>();
  for (let i = 1; i < args.length; i++) {
    let a = args[i]!;
    let value: string | undefined;
    if (a.startsWith('--file=')) {
      value = a.slice('--file='.length);
      a = '--file';
    } else if (a === '-f' || a === '--file') {
      value = args[++i];
      if (value === undefined || value.startsWith('-')) return undefined; // let commander judge
      a = '--file';
    }
    if (seen.has(a)) return undefined;
    seen.add(a);
    switch (a) {
      case '--dump': break;
      case '--file': opts.file = value!; break;
      case '-e': opts.e = true; break;
      case '--json': opts.json = true; break;
      case '--ignore-unknown': opts.ignoreUnknown = true; break;
      case '-q': case '--quiet':
        if (seen.has('-q') && seen.has('--quiet')) return undefined;
        opts.quiet = true;
        break;
      case '--no-progress': opts.progress = false; break;
      default: return undefined;
    }
  }
  return seen.has('--dump') ? opts : undefined;
}

// Shared pieces of the command line: option parsers, one-line errors, the package version.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * commander, loaded with require when first needed: an ESM import of this CommonJS package starts
 * Node's CJS export scanner (~1.7 MiB more RSS), and `receive --dump` usually needs no commander at all.
 */
export function commander(): typeof import('commander') {
  return createRequire(import.meta.url)('commander') as typeof import('commander');
}

/** Thrown for usage errors found after commander parsed the options (exit 1, one line). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The package version, from package.json next to dist/ (or src/ when run from sources). */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Commander argument parser for a non-negative decimal integer. */
export function parseCount(value: string): number {
  if (!/^\d+$/.test(value)) throw new (commander().InvalidArgumentError)('expected a non-negative integer.');
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new (commander().InvalidArgumentError)('number too large.');
  return n;
}

/** Commander accumulator for repeatable flags such as -v. */
export function increase(_value: string, previous: number): number {
  return previous + 1;
}

/** Commander accumulator for repeatable options such as -c SRC. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Any error as the one line we print after `ERROR: `. */
export function errorLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** Print `ERROR: ...` on stderr. */
export function printError(err: unknown): void {
  process.stderr.write(`ERROR: ${errorLine(err)}\n`);
}

/** Verbosity from -v count and -q, as progs: 1 by default, 0 when quiet. */
export function verbosityOf(opts: { verbose?: number; quiet?: boolean }): number {
  return opts.quiet ? 0 : 1 + (opts.verbose ?? 0);
}

/** Log sink for library calls: one line per message on stderr. */
export function stderrLog(line: string): void {
  process.stderr.write(line.endsWith('\n') ? line : line + '\n');
}

/** "No such file or directory" from a Node fs error (its strerror-like part), else the message. */
export function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === 'string' && typeof e.message === 'string' && e.message.startsWith(`${e.code}: `)) {
    const text = e.message.slice(e.code.length + 2).split(',')[0]!;
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  return e instanceof Error ? e.message : String(err);
}

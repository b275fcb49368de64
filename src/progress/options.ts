// Whether to show progress: `--progress` forces it on (even when stderr is not a terminal),
// `--no-progress` and `-q` turn it off, and by default it is on only when stderr is a terminal.

export interface ProgressChoice {
  /** true = --progress, false = --no-progress, undefined = neither given. */
  progress?: boolean;
  /** -q / --quiet (verbosity 0). */
  quiet?: boolean;
  /** The stream progress would be drawn on (stderr). */
  stream: { isTTY?: boolean };
}

export function progressEnabled(choice: ProgressChoice): boolean {
  if (choice.progress === true) return true;
  if (choice.progress === false || choice.quiet === true) return false;
  return choice.stream.isTTY === true;
}

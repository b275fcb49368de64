// The one error type of the stream codec. Every problem in the input (corruption, truncation, limits,
// unsupported versions or commands) is a StreamError whose message is one line saying what went wrong,
// in which command (1-based #index and name, when known) and at which byte offset of the input.

export class StreamError extends Error {
  /** Byte offset in the input: the command header for command-level problems, the attribute for
   *  attribute-level ones, the end of the input for truncation. */
  readonly offset: number;
  /** 1-based index of the command over the whole input, when the problem is inside a command. */
  readonly index?: number;
  /** Command name ('write', 'command 27' for an unknown number), when known. */
  readonly commandName?: string;

  constructor(message: string, offset: number, index?: number, commandName?: string) {
    super(message);
    this.name = 'StreamError';
    this.offset = offset;
    if (index !== undefined) this.index = index;
    if (commandName !== undefined) this.commandName = commandName;
  }
}

/** "command #7 (write)" or "command #7" when the name is not known yet. */
export function describeCommand(index: number, name?: string): string {
  return name === undefined ? `command #${index}` : `command #${index} (${name})`;
}

// PLACEHOLDER until the send driver lands (the send-driver owner replaces this file).
export interface SendOptions {
  /** Subvolumes to send, in order. */
  subvolumes: string[];
  /** -p PARENT. */
  parent?: string;
  /** -c CLONE_SRC (repeatable). */
  cloneSources: string[];
  /** -f OUTFILE; otherwise `outputFd` (stdout). */
  outFile?: string;
  outputFd?: number;
  /** --no-data. */
  noData: boolean;
  /** --proto N (undefined = progs' default). */
  proto?: number;
  /** --compressed-data. */
  compressedData: boolean;
  /** -e. */
  omitEnd: boolean;
  /** 0 = -q, 1 = default, 2 = -v. */
  verbosity: number;
  log?: (line: string) => void;
}

export async function send(_options: SendOptions): Promise<void> {
  throw new Error('send: not implemented yet');
}

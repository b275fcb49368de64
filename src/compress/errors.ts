// The one error type every decoder throws for bad compressed input, so callers can tell
// "the payload is corrupt" apart from programming errors and system call failures.

export class CorruptDataError extends Error {
  /** Codec name, e.g. 'zstd', 'zlib', 'lzo'. */
  readonly codec: string;
  /** Byte offset inside the encoded payload where the problem was found, when known. */
  readonly offset: number | undefined;

  constructor(codec: string, message: string, offset?: number) {
    super(`${codec}: ${message}${offset === undefined ? '' : ` at payload byte ${offset}`}`);
    this.name = 'CorruptDataError';
    this.codec = codec;
    this.offset = offset;
  }
}

// Fixed texts of the dump (line titles, field labels), end to end in one Buffer, so that OutBuffer.text()
// copies them four bytes at a time through one DataView instead of a character at a time.
//
// A text is named by a "piece" number: start * 256 + length. Each text starts on a multiple of 4 and is
// followed by at least 3 spare bytes, so copying whole words never reads past the table.

/** start * 256 + length of a text in a table's view (length < 256). */
export type Piece = number;

export function pieceStart(piece: Piece): number {
  return (piece - (piece & 0xff)) / 256;
}

export function pieceLength(piece: Piece): number {
  return piece & 0xff;
}

export function makePiece(start: number, length: number): Piece {
  if (length > 0xff) throw new RangeError(`a text piece holds at most 255 bytes, not ${length}`);
  return start * 256 + length;
}

export interface TextTable<K extends string> {
  readonly view: DataView;
  readonly piece: Readonly<Record<K, Piece>>;
}

/** A table of latin1 texts, each named by its key. */
export function textTable<K extends string>(texts: Readonly<Record<K, string>>): TextTable<K> {
  const keys = Object.keys(texts) as K[];
  const slot = (text: string) => (text.length + 3 + 3) & ~3; // the text, 3 spare bytes, rounded up to a word
  const bytes = Buffer.alloc(keys.reduce((size, k) => size + slot(texts[k]), 0));
  const piece = {} as Record<K, Piece>;
  let at = 0;
  for (const k of keys) {
    const text = texts[k];
    bytes.write(text, at, 'latin1');
    piece[k] = makePiece(at, text.length);
    at += slot(text);
  }
  return { view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), piece };
}

/**
 * Copy `length` bytes from `from` at `start` to `to` at `at`, a word (4 bytes) at a time: up to 3 bytes
 * past `at + length` are written too (the caller has room there, and overwrites them next), and `from` must
 * have bytes up to the next multiple of 4 (a table's spare bytes).
 */
export function copyWords(to: DataView, at: number, from: DataView, start: number, length: number): void {
  for (let i = 0; i < length; i += 4) to.setInt32(at + i, from.getInt32(start + i, true), true);
}

/** A piece's text (error messages). */
export function pieceText(view: DataView, piece: Piece): string {
  let text = '';
  const start = pieceStart(piece);
  for (let i = 0; i < pieceLength(piece); i++) text += String.fromCharCode(view.getUint8(start + i));
  return text;
}

// Human-readable numbers for the progress line and the final summary: sizes in binary units, rates,
// durations as clock time, and file names made safe to print on a terminal.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 0 → "0 B", 1536 → "1.5 KiB", 268435456 → "256.0 MiB". One decimal above bytes. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '? B';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  // 1023.96 KiB would print as "1024.0 KiB": move up a unit instead.
  if (unit > 0 && value.toFixed(1) === '1024.0' && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** Bytes per second → "51.2 MiB/s". */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** Seconds → "0:07", "12:34", "1:02:03" (rounded down to whole seconds). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const total = Math.floor(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * A raw file name as it may be shown on one terminal line: valid UTF-8 stays readable, control
 * characters, backslashes and bytes that are not UTF-8 become \ooo escapes (so a name can never move
 * the cursor or break the line).
 */
export function displayPath(path: Buffer | string): string {
  const bytes = typeof path === 'string' ? Buffer.from(path, 'utf8') : path;
  const text = bytes.toString('utf8');
  const validUtf8 = Buffer.byteLength(text, 'utf8') === bytes.length && !text.includes('\ufffd');
  if (validUtf8) {
    let out = '';
    for (const ch of text) {
      const code = ch.codePointAt(0)!;
      out += code < 0x20 || code === 0x7f || ch === '\\' || (code >= 0x80 && code < 0xa0)
        ? escapeBytes(Buffer.from(ch, 'utf8'))
        : ch;
    }
    return out;
  }
  let out = '';
  for (const byte of bytes) {
    out += byte >= 0x20 && byte < 0x7f && byte !== 0x5c ? String.fromCharCode(byte) : escapeBytes(Buffer.of(byte));
  }
  return out;
}

function escapeBytes(bytes: Buffer): string {
  let out = '';
  for (const byte of bytes) out += '\\' + byte.toString(8).padStart(3, '0');
  return out;
}

/** Cut `text` to at most `width` columns, keeping the end (the interesting part of a long path). */
export function fitEnd(text: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...text];
  if (chars.length <= width) return text;
  if (width === 1) return '…';
  return '…' + chars.slice(chars.length - (width - 1)).join('');
}

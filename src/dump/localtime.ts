// Local time as glibc's localtime_r + strftime("%FT%T%z") compute it, for a dump identical to progs'.
//
// JavaScript's Date uses ICU's time zone data, which differs from the system's /usr/share/zoneinfo for
// old dates (local mean time offsets, zones ICU merges), and cannot print glibc's %Y for years < 1000.
// So we read the TZif file glibc would read (honouring TZ and TZDIR) and apply glibc's rules:
//   - TZ unset: /etc/localtime; TZ="": UTC; a leading ':' is ignored; a relative name is looked up under
//     TZDIR (default /usr/share/zoneinfo); if no file parses, TZ is read as a POSIX rule string; if that
//     fails too, UTC.
//   - before the first transition (or with none): the first non-DST type;
//   - at or after the last transition: the footer's POSIX rule, evaluated for the UTC year (glibc quirk:
//     rule dates for years <= 1970 are counted from the epoch);
//   - otherwise: the type of the last transition at or before the time.
//   - leap-second ("right/") zones: the correction of the last leap at or before the time, and :60 on a
//     leap second itself.
import { readFileSync } from 'node:fs';

/** Offset from UTC, in seconds east, for a POSIX-rule zone. */
interface PosixRule {
  /** 'J' = Jn (1..365, Feb 29 never counted), 'D' = n (0..365), 'M' = Mm.w.d. */
  type: 'J' | 'D' | 'M';
  day: number;
  week: number;
  month: number;
  /** Seconds after local midnight. */
  secs: number;
}

interface PosixTz {
  stdOffset: number;
  dstOffset?: number;
  start?: PosixRule;
  end?: PosixRule;
}

export interface Zone {
  /** Transition times (UTC seconds), ascending. */
  transitions: number[];
  /** Index into `types` for each transition. */
  transitionTypes: number[];
  types: { offset: number; isDst: boolean }[];
  /** The footer rule (TZif v2+) or the whole zone (a POSIX TZ string). */
  rule?: PosixTz;
  /** Leap second records: UTC time and total correction from then on. */
  leaps?: { time: number; correction: number }[];
}

const UTC_ZONE: Zone = { transitions: [], transitionTypes: [], types: [{ offset: 0, isDst: false }] };

/** Parse a TZif file (v1, or v2+ using the 64-bit section and footer). Undefined if it is not one. */
export function parseTzif(bytes: Buffer): Zone | undefined {
  if (bytes.length < 44 || bytes.toString('latin1', 0, 4) !== 'TZif') return undefined;
  const version = bytes[4]!;
  const counts = (at: number): number[] => [0, 1, 2, 3, 4, 5].map((i) => bytes.readUInt32BE(at + 20 + 4 * i));
  let [isut, isstd, leap, time, type, chars] = counts(0) as [number, number, number, number, number, number];
  let pos = 44;
  let timeSize = 4;
  if (version >= 0x32 /* '2' */) {
    pos += time * 5 + type * 6 + chars + leap * 8 + isstd + isut;
    if (bytes.length < pos + 44 || bytes.toString('latin1', pos, pos + 4) !== 'TZif') return undefined;
    [isut, isstd, leap, time, type, chars] = counts(pos) as [number, number, number, number, number, number];
    pos += 44;
    timeSize = 8;
  }
  const need = time * (timeSize + 1) + type * 6 + chars + leap * (timeSize + 4) + isstd + isut;
  if (type === 0 || bytes.length < pos + need) return undefined;
  const transitions: number[] = [];
  for (let i = 0; i < time; i++, pos += timeSize) {
    transitions.push(timeSize === 8 ? Number(bytes.readBigInt64BE(pos)) : bytes.readInt32BE(pos));
  }
  const transitionTypes: number[] = [];
  for (let i = 0; i < time; i++) transitionTypes.push(Math.min(bytes[pos++]!, type - 1));
  const types: Zone['types'] = [];
  for (let i = 0; i < type; i++, pos += 6) types.push({ offset: bytes.readInt32BE(pos), isDst: bytes[pos + 4] !== 0 });
  pos += chars;
  const leaps: { time: number; correction: number }[] = [];
  for (let i = 0; i < leap; i++, pos += timeSize + 4) {
    const time = timeSize === 8 ? Number(bytes.readBigInt64BE(pos)) : bytes.readInt32BE(pos);
    leaps.push({ time, correction: bytes.readInt32BE(pos + timeSize) });
  }
  pos += isstd + isut;
  const zone: Zone = { transitions, transitionTypes, types };
  if (leaps.length > 0) zone.leaps = leaps;
  if (timeSize === 8 && bytes[pos] === 0x0a) {
    const end = bytes.indexOf(0x0a, pos + 1);
    if (end > pos + 1) {
      const rule = parsePosixTz(bytes.toString('latin1', pos + 1, end));
      if (rule) zone.rule = rule;
    }
  }
  return zone;
}

/** Parse a POSIX TZ string like `EST5EDT,M3.2.0,M11.1.0` or `<+0530>-5:30`. Undefined if invalid. */
export function parsePosixTz(text: string): PosixTz | undefined {
  let i = 0;
  const name = (): boolean => {
    if (text[i] === '<') {
      const close = text.indexOf('>', i);
      if (close < 0 || close - i - 1 < 3 || !/^[A-Za-z0-9+-]+$/.test(text.slice(i + 1, close))) return false;
      i = close + 1;
      return true;
    }
    const start = i;
    while (i < text.length && /[A-Za-z]/.test(text[i]!)) i++;
    return i - start >= 3;
  };
  // hh[:mm[:ss]] with an optional sign; returns seconds or undefined.
  const hms = (maxHours: number): number | undefined => {
    let sign = 1;
    if (text[i] === '+' || text[i] === '-') sign = text[i++] === '-' ? -1 : 1;
    const m = /^(\d+)(?::(\d+))?(?::(\d+))?/.exec(text.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    const h = Math.min(Number(m[1]), maxHours);
    const mm = Math.min(Number(m[2] ?? 0), 59);
    const ss = Math.min(Number(m[3] ?? 0), 59);
    return sign * (h * 3600 + mm * 60 + ss);
  };
  const rule = (): PosixRule | undefined => {
    if (text[i] !== ',') return undefined;
    i++;
    let r: PosixRule;
    let m: RegExpExecArray | null;
    if (text[i] === 'J' && (m = /^J(\d+)/.exec(text.slice(i)))) {
      r = { type: 'J', day: Number(m[1]), week: 0, month: 0, secs: 7200 };
    } else if ((m = /^M(\d+)\.(\d+)\.(\d+)/.exec(text.slice(i)))) {
      r = { type: 'M', month: Number(m[1]), week: Number(m[2]), day: Number(m[3]), secs: 7200 };
      if (r.month < 1 || r.month > 12 || r.week < 1 || r.week > 5 || r.day > 6) return undefined;
    } else if ((m = /^(\d+)/.exec(text.slice(i)))) {
      r = { type: 'D', day: Number(m[1]), week: 0, month: 0, secs: 7200 };
    } else {
      return undefined;
    }
    i += m[0].length;
    if (text[i] === '/') {
      i++;
      const secs = hms(167);
      if (secs === undefined) return undefined;
      r.secs = secs;
    }
    return r;
  };

  if (!name()) return undefined;
  const std = hms(24);
  if (std === undefined) return undefined;
  const tz: PosixTz = { stdOffset: -std };
  if (i === text.length) return tz;
  if (!name()) return tz; // glibc keeps the standard part when the rest does not parse
  tz.dstOffset = tz.stdOffset + 3600;
  if (i < text.length && text[i] !== ',') {
    const dst = hms(24);
    if (dst !== undefined) tz.dstOffset = -dst;
  }
  if (i >= text.length || (text[i] === ',' && i === text.length - 1)) {
    // No rule: the US rules, as glibc's built-in default.
    tz.start = { type: 'M', month: 3, week: 2, day: 0, secs: 7200 };
    tz.end = { type: 'M', month: 11, week: 1, day: 0, secs: 7200 };
    return tz;
  }
  const start = rule();
  const end = start && rule();
  if (start && end) {
    tz.start = start;
    tz.end = end;
  } else {
    delete tz.dstOffset; // invalid rules: glibc ends up with standard time only
  }
  return tz;
}

const zoneCache = new Map<string, Zone>();

/** The zone glibc would use for this TZ value (undefined = TZ unset). */
export function loadZone(tz: string | undefined = process.env.TZ, tzdir = process.env.TZDIR): Zone {
  const key = `${tz === undefined ? '\0unset' : tz}\0${tzdir ?? ''}`;
  let zone = zoneCache.get(key);
  if (!zone) {
    zone = resolveZone(tz, tzdir);
    zoneCache.set(key, zone);
  }
  return zone;
}

function readZoneFile(path: string): Zone | undefined {
  try {
    return parseTzif(readFileSync(path));
  } catch {
    return undefined;
  }
}

function resolveZone(tz: string | undefined, tzdir: string | undefined): Zone {
  if (tz === undefined) return readZoneFile('/etc/localtime') ?? UTC_ZONE;
  let name = tz.startsWith(':') ? tz.slice(1) : tz;
  if (name === '') name = 'Universal';
  const dir = tzdir && tzdir !== '' ? tzdir : '/usr/share/zoneinfo';
  const path = name.startsWith('/') ? name : `${dir}/${name}`;
  const fromFile = name.includes('..') && !name.startsWith('/') ? undefined : readZoneFile(path);
  if (fromFile) return fromFile;
  if (name === 'Universal' || name === 'UTC') return UTC_ZONE;
  const rule = parsePosixTz(name);
  return rule ? { transitions: [], transitionTypes: [], types: [], rule } : UTC_ZONE;
}

const DAY = 86400;

function isLeap(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

const MONTH_START = [
  [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365],
  [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366],
];

/** UTC time at which `rule` fires in `year` (glibc's compute_change, quirks included). */
function ruleChange(rule: PosixRule, year: number, offsetBefore: number): number {
  let t = 0;
  if (year > 1970) {
    // glibc counts these days in a C int: past year ~5.8 million the count wraps around, and so do we.
    const days = (Math.imul(year - 1970, 365) + (Math.trunc((year - 1) / 4) - 492) - (Math.trunc((year - 1) / 100) - 19)
      + (Math.trunc((year - 1) / 400) - 4)) | 0;
    t = days * DAY;
  }
  if (rule.type === 'J') {
    t += (rule.day - 1) * DAY;
    if (rule.day >= 60 && isLeap(year)) t += DAY;
  } else if (rule.type === 'D') {
    t += rule.day * DAY;
  } else {
    const starts = MONTH_START[isLeap(year) ? 1 : 0]!;
    t += starts[rule.month - 1]! * DAY;
    // Zeller's congruence: day of week of the 1st of the month (C division truncates).
    const m1 = ((rule.month + 9) % 12) + 1;
    const yy0 = rule.month <= 2 ? year - 1 : year;
    const yy1 = Math.trunc(yy0 / 100);
    const yy2 = yy0 % 100;
    let dow = (Math.trunc((26 * m1 - 2) / 10) + 1 + yy2 + Math.trunc(yy2 / 4) + Math.trunc(yy1 / 4) - 2 * yy1) % 7;
    if (dow < 0) dow += 7;
    let d = rule.day - dow;
    if (d < 0) d += 7;
    const monthDays = starts[rule.month]! - starts[rule.month - 1]!;
    for (let i = 1; i < rule.week; i++) {
      if (d + 7 >= monthDays) break;
      d += 7;
    }
    t += d * DAY;
  }
  return t - offsetBefore + rule.secs;
}

function posixOffset(tz: PosixTz, t: number): number {
  if (tz.dstOffset === undefined || !tz.start || !tz.end) return tz.stdOffset;
  const year = civil(Math.floor(t / DAY)).year;
  const start = ruleChange(tz.start, year, tz.stdOffset);
  const end = ruleChange(tz.end, year, tz.dstOffset);
  const dst = start > end ? t < end || t >= start : t >= start && t < end;
  return dst ? tz.dstOffset : tz.stdOffset;
}

/** Offset from UTC (seconds east) in effect at UTC time `t` in `zone`. */
export function utcOffset(zone: Zone, t: number): number {
  const tr = zone.transitions;
  if (tr.length === 0 || t < tr[0]!) {
    if (tr.length === 0 && zone.types.length === 0 && zone.rule) return posixOffset(zone.rule, t);
    const first = zone.types.find((ty) => !ty.isDst) ?? zone.types[0]!;
    return first.offset;
  }
  if (t >= tr[tr.length - 1]! && zone.rule) return posixOffset(zone.rule, t);
  // Last transition at or before t.
  let lo = 0;
  let hi = tr.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (tr[mid]! <= t) lo = mid;
    else hi = mid - 1;
  }
  return zone.types[zone.transitionTypes[lo]!]!.offset;
}

/** glibc's leap second handling: the correction in force at `t`, and whether `t` is a leap second. */
function leapCorrection(leaps: { time: number; correction: number }[], t: number): { correction: number; hit: number } {
  let i = leaps.length - 1;
  while (i >= 0 && leaps[i]!.time > t) i--;
  if (i < 0) return { correction: 0, hit: 0 };
  const correction = leaps[i]!.correction;
  let hit = 0;
  if (t === leaps[i]!.time && ((i === 0 && correction > 0) || (i > 0 && correction > leaps[i - 1]!.correction))) {
    hit = 1;
    while (i > 0 && leaps[i]!.time === leaps[i - 1]!.time + 1 && leaps[i]!.correction === leaps[i - 1]!.correction + 1) {
      hit++;
      i--;
    }
  }
  return { correction, hit };
}

/** Proleptic Gregorian date of a day number (days since 1970-01-01), any sign. */
function civil(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

const pad2 = (n: number): string => (n < 10 ? '0' + n : String(n));

/** `strftime("%FT%T%z", localtime(sec))` exactly as glibc prints it (year unpadded, %z truncated). */
export function formatLocalTime(sec: number, zone: Zone = loadZone()): string {
  const offset = utcOffset(zone, sec);
  const { correction, hit } = zone.leaps ? leapCorrection(zone.leaps, sec) : { correction: 0, hit: 0 };
  // Split before adding the offset: sec may be near 2^53, where sec + offset would round.
  let rem = (sec % DAY) + offset - correction;
  let days = (sec - (sec % DAY)) / DAY;
  const carry = Math.floor(rem / DAY);
  days += carry;
  rem -= carry * DAY;
  const { year, month, day } = civil(days);
  const hh = Math.floor(rem / 3600);
  const mm = Math.floor((rem % 3600) / 60);
  const ss = (rem % 60) + hit;
  const abs = Math.abs(offset);
  const minutes = Math.floor(abs / 60);
  const z = (Math.floor(minutes / 60) * 100 + (minutes % 60)).toString().padStart(4, '0');
  return `${year}-${pad2(month)}-${pad2(day)}T${pad2(hh)}:${pad2(mm)}:${pad2(ss)}${offset < 0 ? '-' : '+'}${z}`;
}

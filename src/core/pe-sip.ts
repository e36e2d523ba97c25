/**
 * The SIP persistence engine (`--pe sip`, spec §7.1): the Call-ID header of a SIP message becomes
 * the persistence template's engine data, so every datagram of one call reaches the same real
 * server. The header search reproduces the kernel's (ip_vs_pe_sip.c get_callid over
 * nf_conntrack_sip.c ct_sip_get_header), quirks included:
 * - a header starts after CR, LF or CRLF; the character that starts a line is never itself taken
 *   as a line end, so after an empty LF-only line the next line is not examined;
 * - names are `Call-ID` or the compact `i` (not followed by a letter), in any letter case;
 * - white space around the colon is spaces and tabs and at most one folded line; a name that
 *   matched but is not followed by the colon ends the search;
 * - the value is a "word" (ISO 8859-1 letters count as alphanumeric, as in the kernel's ctype
 *   table), optionally `@` and a second word; a header whose value is none makes the search go on
 *   from that value;
 * - the value found must be at most 255 bytes and be followed by CR or LF.
 */

/** Longest engine data a template keeps (IP_VS_PEDATA_MAXLEN). */
export const PE_DATA_MAX = 255;

const HT = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const COLON = 0x3a;
const AT = 0x40;

/** Letters as the kernel's lib/ctype.c classifies them: ASCII and ISO 8859-1 (not × and ÷). */
function isAlpha(c: number): boolean {
  const l = c | 0x20;
  return (l >= 0x61 && l <= 0x7a) || (c >= 0xc0 && c !== 0xd7 && c !== 0xf7);
}

/** RFC 3261 "word" characters as nf_conntrack_sip.c iswordc accepts them. */
function isWordChar(c: number): boolean {
  return (
    isAlpha(c) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x21 || // !
    c === 0x22 || // "
    c === 0x25 || // %
    (c >= 0x27 && c <= 0x2b) || // ' ( ) * +
    (c >= 0x2d && c <= 0x2f) || // - . /
    c === 0x3a || // :
    c === 0x3c || // <
    c === 0x3e || // >
    c === 0x3f || // ?
    (c >= 0x5b && c <= 0x5d) || // [ \ ]
    c === 0x5f || // _
    c === 0x60 || // `
    c === 0x7b || // {
    c === 0x7d || // }
    c === 0x7e // ~
  );
}

const CALL_ID = [0x63, 0x61, 0x6c, 0x6c, 0x2d, 0x69, 0x64] as const; // "call-id"

function isCallIdName(b: Uint8Array, p: number): boolean {
  for (let i = 0; i < CALL_ID.length; i++) {
    const c = b[p + i]!;
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== CALL_ID[i]) return false;
  }
  return true;
}

/**
 * At the line end `b[p]`: the first non-blank character of the folded line that follows, or -1
 * when the next line is no continuation (sip_follow_continuation).
 */
function followFold(b: Uint8Array, p: number, end: number): number {
  if (++p >= end) return -1;
  if (b[p - 1] === CR && b[p] === LF && ++p >= end) return -1;
  if (b[p] !== SP && b[p] !== HT) return -1;
  while (p < end && (b[p] === SP || b[p] === HT)) p++;
  return p;
}

/** Skips spaces, tabs and one folded line end (sip_skip_whitespace); -1 at an unfolded line end. */
function skipBlank(b: Uint8Array, p: number, end: number): number {
  for (; p < end; p++) {
    const c = b[p]!;
    if (c === SP || c === HT) continue;
    if (c === CR || c === LF) return followFold(b, p, end);
    break;
  }
  return p;
}

function wordLength(b: Uint8Array, p: number, end: number): number {
  let n = 0;
  while (p + n < end && isWordChar(b[p + n]!)) n++;
  return n;
}

/** Length of the Call-ID value at `p`: a word, optionally `@` and a word; 0 when malformed. */
function valueLength(b: Uint8Array, p: number, end: number): number {
  const n = wordLength(b, p, end);
  if (n === 0 || p + n === end || b[p + n] !== AT) return n;
  const host = wordLength(b, p + n + 1, end);
  return host === 0 ? 0 : n + 1 + host;
}

// results of one header search (set by findHeader)
let foundAt = 0;
let foundLen = 0;

const FOUND = 1;
const NONE = 0;
const BAD_VALUE = -1;

/**
 * One ct_sip_get_header pass from `from`: FOUND (value at `foundAt`, `foundLen` bytes), NONE, or
 * BAD_VALUE (a Call-ID header whose value is not one; `foundAt` is where that value starts).
 */
function findHeader(b: Uint8Array, from: number, end: number): number {
  for (let p = from; p < end; p++) {
    if (b[p] !== CR && b[p] !== LF) continue;
    if (++p >= end) break;
    if (b[p - 1] === CR && b[p] === LF && ++p >= end) break;
    if (b[p] === SP || b[p] === HT) continue; // a continuation line
    let q: number;
    if (end - p >= CALL_ID.length && isCallIdName(b, p)) q = p + CALL_ID.length;
    else if (end - p >= 2 && (b[p]! | 0x20) === 0x69 && !isAlpha(b[p + 1]!)) q = p + 1;
    else continue;
    q = skipBlank(b, q, end);
    if (q < 0 || q >= end || b[q] !== COLON || ++q >= end) return NONE;
    q = skipBlank(b, q, end);
    if (q < 0) return NONE;
    foundAt = q;
    foundLen = valueLength(b, q, end);
    return foundLen ? FOUND : BAD_VALUE;
  }
  return NONE;
}

/**
 * Finds the Call-ID value in the SIP message `b[off, off + len)`; returns it as a (latin1) string,
 * or null when there is none or it is unusable (too long, not followed by a line end).
 */
export function sipCallId(b: Uint8Array, off: number, len: number): string | null {
  const end = Math.min(b.length, off + len);
  let from = off;
  for (;;) {
    const r = findHeader(b, from, end);
    if (r === FOUND) break;
    if (r === NONE) return null;
    // get_callid adds the bad value's offset from the message start to its search offset
    from += foundAt - off;
  }
  const after = foundAt + foundLen;
  if (foundLen > PE_DATA_MAX || after >= end || (b[after] !== CR && b[after] !== LF)) return null;
  return Buffer.from(b.buffer, b.byteOffset + foundAt, foundLen).toString('latin1');
}

/**
 * The SIP persistence engine (`--pe sip`, spec §7.1): the Call-ID header of a SIP message becomes
 * the persistence template's engine data, so every datagram of one call reaches the same real
 * server. Header parsing follows RFC 3261 (long form `Call-ID`, compact form `i`, names matched
 * case-insensitively at the start of a line, white space around the colon) with the kernel's
 * limits: a value of at most 255 bytes that must be followed by CR or LF.
 */

/** Longest engine data a template keeps (IP_VS_PEDATA_MAXLEN). */
export const PE_DATA_MAX = 255;

/** RFC 3261 "word" characters, which a Call-ID is made of (plus one '@'). */
function isWordChar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
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

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

function isAlpha(c: number): boolean {
  const l = lower(c);
  return l >= 0x61 && l <= 0x7a;
}

const CALL_ID = [0x63, 0x61, 0x6c, 0x6c, 0x2d, 0x69, 0x64]; // "call-id"

function wordRun(b: Uint8Array, p: number, end: number): number {
  let n = 0;
  while (p + n < end && isWordChar(b[p + n]!)) n++;
  return n;
}

/**
 * Finds the Call-ID value in the SIP message `b[off, off + len)`; returns it as a string, or null
 * when there is none or it is malformed (too long, not followed by a line end).
 */
export function sipCallId(b: Uint8Array, off: number, len: number): string | null {
  const end = Math.min(b.length, off + len);
  for (let p = off; p < end; p++) {
    // a header starts right after a line end; continuation lines start with white space
    const c = b[p]!;
    if (c !== 0x0d && c !== 0x0a) continue;
    let q = p + 1;
    if (q < end && c === 0x0d && b[q] === 0x0a) q++;
    if (q >= end) break;
    if (b[q] === 0x20 || b[q] === 0x09) continue;
    let name = -1;
    if (end - q >= CALL_ID.length && CALL_ID.every((x, i) => lower(b[q + i]!) === x)) {
      name = q + CALL_ID.length;
    } else if (end - q >= 2 && lower(b[q]!) === 0x69 && !isAlpha(b[q + 1]!)) {
      name = q + 1;
    }
    if (name < 0) continue;
    let r = name;
    while (r < end && (b[r] === 0x20 || b[r] === 0x09)) r++;
    if (r >= end || b[r] !== 0x3a) continue;
    r++;
    while (r < end && (b[r] === 0x20 || b[r] === 0x09)) r++;
    let n = wordRun(b, r, end);
    if (n > 0 && r + n < end && b[r + n] === 0x40) {
      const host = wordRun(b, r + n + 1, end);
      n = host > 0 ? n + 1 + host : 0;
    }
    if (n === 0 || n > PE_DATA_MAX) return null;
    const after = r + n;
    if (after >= end || (b[after] !== 0x0d && b[after] !== 0x0a)) return null;
    return Buffer.from(b.buffer, b.byteOffset + r, n).toString('latin1');
  }
  return null;
}

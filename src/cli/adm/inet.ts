/**
 * The C library number and address parsers whose exact acceptance rules ipvsadm inherits:
 * strtol-based `string_to_number`, `atoi`, glibc `inet_aton` (short and octal/hex forms such as
 * `10.1` or `0x0a.1`), strict `inet_pton` for IPv4 and IPv6.
 */
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../../core/addr.js';

const WS = /^[ \t\n\v\f\r]*/;

/**
 * strtol(s, &end, 10) accepting only a fully consumed string: returns the value or null. Leading
 * white space and a sign are allowed, as in C.
 */
export function strtolWhole(s: string): number | null {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)$/.exec(s);
  if (!m) return null;
  const v = Number(m[2]);
  // long is 64-bit; anything beyond that is ERANGE. Values this large fail every range check anyway.
  if (!Number.isSafeInteger(v)) return null;
  return m[1] === '-' ? -v : v;
}

/** ipvsadm's string_to_number: an integer in [min, max] or -1. */
export function stringToNumber(s: string, min: number, max: number): number {
  const v = strtolWhole(s);
  if (v === null || v < min || v > max) return -1;
  return v;
}

/** C atoi: leading white space, optional sign, digits up to the first non-digit; 0 if none. */
export function atoi(s: string): number {
  const m = /^([+-]?)(\d*)/.exec(s.replace(WS, ''));
  if (!m || !m[2]) return 0;
  const v = Number(m[2]) | 0;
  return m[1] === '-' ? -v : v;
}

/** True when every character is a decimal digit (also for the empty string, as in ipvsadm). */
export function strIsDigit(s: string): boolean {
  return /^\d*$/.test(s);
}

/** glibc inet_aton: returns the host-order address, or null when the text is not an address. */
export function inetAton(text: string): number | null {
  const parts: number[] = [];
  let i = 0;
  let val = 0;
  let digit = false;
  const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
  for (;;) {
    let c = text[i];
    if (!isDigit(c)) return null;
    val = 0;
    let base = 10;
    digit = false;
    if (c === '0') {
      c = text[++i];
      if (c === 'x' || c === 'X') {
        base = 16;
        c = text[++i];
      } else {
        base = 8;
        digit = true;
      }
    }
    for (;;) {
      if (isDigit(c)) {
        if (base === 8 && (c === '8' || c === '9')) return null;
        val = val * base + (c!.charCodeAt(0) - 48);
      } else if (base === 16 && c !== undefined && /[0-9a-fA-F]/.test(c)) {
        val = val * 16 + parseInt(c, 16);
      } else break;
      if (val > 0xffffffff) return null;
      digit = true;
      c = text[++i];
    }
    if (c === '.') {
      if (parts.length > 2 || val > 0xff) return null;
      parts.push(val);
      i++;
    } else {
      if (c !== undefined && !/[ \t\n\v\f\r]/.test(c)) return null;
      break;
    }
  }
  if (!digit) return null;
  const n = parts.length + 1;
  const limits = [0xffffffff, 0xffffff, 0xffff, 0xff];
  if (val > limits[n - 1]!) return null;
  let res = val;
  for (let k = 0; k < parts.length; k++) res += parts[k]! * 2 ** (24 - 8 * k);
  return res >>> 0;
}

/** Strict inet_pton(AF_INET): four decimal parts 0..255 without leading zeros. */
export const inetPton4: (text: string) => number | null = parseIpv4;

/** inet_pton(AF_INET6) → canonical (inet_ntop) text, or null. */
export function inetPton6(text: string): string | null {
  const w = parseIpv6(text);
  return w ? formatIpv6(w) : null;
}

/** inet_aton → dotted text, or null. */
export function inetAtonText(text: string): string | null {
  const v = inetAton(text);
  return v === null ? null : formatIpv4(v);
}

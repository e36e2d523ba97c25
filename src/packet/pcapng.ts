/**
 * pcapng files (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html), what Wireshark
 * and dumpcap write by default, read into the same `PcapFile` shape as classic pcap: Section Header
 * Blocks (either byte order, several sections), Interface Description Blocks (link type, snaplen,
 * `if_tsresol`, `if_tsoffset`), Enhanced and Simple Packet Blocks; other blocks (name resolution,
 * statistics, custom) are skipped. Every interface that carries packets must have the same link type.
 * Never throws; records are views into the file's buffer.
 */
import type { PcapFile, PcapReadResult, PcapRecord } from './pcap.js';

/** Block types (draft-ietf-opsawg-pcapng §11.1). */
const BT = { SHB: 0x0a0d0d0a, IDB: 1, SPB: 3, EPB: 6 } as const;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

interface Iface {
  linkType: number;
  snaplen: number;
  /** Timestamp units per second. */
  unitsPerSec: bigint;
  /** Seconds added to every timestamp (if_tsoffset). */
  offsetSec: bigint;
}

/** True when `buf` starts like a pcapng file (a Section Header Block). */
export function isPcapng(buf: Uint8Array): boolean {
  return (
    buf.length >= 4 && buf[0] === 0x0a && buf[1] === 0x0d && buf[2] === 0x0d && buf[3] === 0x0a
  );
}

/**
 * Reads a pcapng file. A block cut short at the end of the file (a capture that was killed) ends
 * the record list and sets `truncated`; a malformed block elsewhere is an error result.
 */
export function readPcapng(buf: Uint8Array, linkTypes: readonly number[]): PcapReadResult {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: PcapRecord[] = [];
  let ifaces: Iface[] = [];
  let le = true;
  let bigEndian = false;
  let linkType = -1;
  let snaplen = 0;
  let truncated: string | undefined;
  let p = 0;
  let n = 0;
  while (p < buf.length) {
    if (p + 12 > buf.length) {
      truncated = `block ${n + 1} at byte ${p} cut short`;
      break;
    }
    const rawType = dv.getUint32(p, true);
    if (rawType === BT.SHB) {
      const magic = dv.getUint32(p + 8, true);
      if (magic === BYTE_ORDER_MAGIC) le = true;
      else if (magic === 0x4d3c2b1a) le = false;
      else return { ok: false, reason: `pcapng section at byte ${p}: bad byte-order magic` };
      if (n === 0) bigEndian = !le;
      const major = p + 14 <= buf.length ? dv.getUint16(p + 12, le) : 1;
      if (major !== 1) return { ok: false, reason: `unsupported pcapng version ${major}` };
      ifaces = [];
    } else if (n === 0) {
      return { ok: false, reason: 'not a pcapng file (no section header block)' };
    }
    const type = dv.getUint32(p, le);
    const len = dv.getUint32(p + 4, le);
    if (len < 12 || len % 4 !== 0)
      return { ok: false, reason: `pcapng block ${n + 1} at byte ${p}: bad length ${len}` };
    if (p + len > buf.length) {
      truncated = `block ${n + 1} at byte ${p} cut short (${len} bytes, ${buf.length - p} left)`;
      break;
    }
    if (dv.getUint32(p + len - 4, le) !== len)
      return { ok: false, reason: `pcapng block ${n + 1} at byte ${p}: trailing length differs` };
    const body = p + 8;
    const end = p + len - 4;
    if (type === BT.IDB) {
      if (end - body < 8)
        return { ok: false, reason: `pcapng interface block at byte ${p} too short` };
      const lt = dv.getUint16(body, le);
      const ifc: Iface = {
        linkType: lt,
        snaplen: dv.getUint32(body + 4, le),
        unitsPerSec: 1_000_000n,
        offsetSec: 0n,
      };
      for (let q = body + 8; q + 4 <= end;) {
        const code = dv.getUint16(q, le);
        const olen = dv.getUint16(q + 2, le);
        if (code === 0 || q + 4 + olen > end) break;
        if (code === 9 && olen >= 1) {
          const r = buf[q + 4]!;
          ifc.unitsPerSec = r & 0x80 ? 1n << BigInt(r & 0x7f) : 10n ** BigInt(r);
        } else if (code === 14 && olen >= 8) {
          ifc.offsetSec = dv.getBigInt64(q + 4, le);
        }
        q += 4 + ((olen + 3) & ~3);
      }
      ifaces.push(ifc);
    } else if (type === BT.EPB || type === BT.SPB) {
      const epb = type === BT.EPB;
      const id = epb ? (end - body >= 20 ? dv.getUint32(body, le) : -1) : 0;
      const ifc = id >= 0 ? ifaces[id] : undefined;
      if (!ifc)
        return {
          ok: false,
          reason: `pcapng packet block at byte ${p} names interface ${id}, not described`,
        };
      if (linkType < 0) {
        if (!linkTypes.includes(ifc.linkType))
          return { ok: false, reason: `unsupported link type ${ifc.linkType}` };
        linkType = ifc.linkType;
        snaplen = ifc.snaplen;
      } else if (ifc.linkType !== linkType) {
        return {
          ok: false,
          reason: `pcapng file mixes link types ${linkType} and ${ifc.linkType}`,
        };
      }
      let data: number;
      let cap: number;
      let orig: number;
      let us = 0;
      if (epb) {
        const ts = (BigInt(dv.getUint32(body + 4, le)) << 32n) | BigInt(dv.getUint32(body + 8, le));
        us = Number((ts * 1_000_000n) / ifc.unitsPerSec + ifc.offsetSec * 1_000_000n);
        if (!Number.isSafeInteger(us))
          return { ok: false, reason: `pcapng packet block at byte ${p}: timestamp out of range` };
        cap = dv.getUint32(body + 12, le);
        orig = dv.getUint32(body + 16, le);
        data = body + 20;
      } else {
        if (end - body < 4)
          return { ok: false, reason: `pcapng packet block at byte ${p} too short` };
        orig = dv.getUint32(body, le);
        data = body + 4;
        cap = Math.min(orig, end - data, ifc.snaplen || orig);
      }
      if (data + cap > end)
        return { ok: false, reason: `pcapng packet block at byte ${p}: data overruns the block` };
      records.push({ timestampUs: us, data: buf.subarray(data, data + cap), origLength: orig });
    }
    p += len;
    n++;
  }
  if (linkType < 0) {
    const lt = ifaces[0]?.linkType;
    if (lt === undefined) linkType = linkTypes[0]!;
    else if (!linkTypes.includes(lt)) return { ok: false, reason: `unsupported link type ${lt}` };
    else linkType = lt;
  }
  const file: PcapFile = { linkType, snaplen, bigEndian, nanosecond: false, records };
  if (truncated) file.truncated = truncated;
  return { ok: true, file };
}

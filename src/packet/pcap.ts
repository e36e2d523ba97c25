/**
 * Classic libpcap files (https://www.tcpdump.org/manpages/pcap-savefile.5.html): a 24-byte global
 * header (magic 0xA1B2C3D4 for microseconds or 0xA1B23C4D for nanoseconds, in either byte order),
 * then 16-byte record headers (seconds, sub-seconds, captured length, original length) each followed
 * by the frame. The writer emits little-endian microsecond files with link type 1 (Ethernet) or 101
 * (raw IP); the reader accepts both byte orders, both resolutions and link types 1, 101, 228, 229,
 * and reads pcapng files too (pcapng.ts). Reading returns views into the file's Buffer (no copy per
 * record).
 */
import { LINKTYPE } from './constants.js';
import { PacketEncodeError, checkInt } from './errors.js';
import { isPcapng, readPcapng } from './pcapng.js';

/** One captured frame. */
export interface PcapRecord {
  /** Capture time in microseconds since the epoch. */
  timestampUs: number;
  /** The captured bytes (a view into the file's buffer when read). */
  data: Uint8Array;
  /** Length of the frame on the wire (>= data.length when the capture was truncated). */
  origLength: number;
}

/** A parsed pcap file. */
export interface PcapFile {
  linkType: number;
  snaplen: number;
  /** True when the file was written in big-endian order. */
  bigEndian: boolean;
  nanosecond: boolean;
  records: PcapRecord[];
  /** Set when the file ends inside a record (as a killed capture leaves it): where, for messages. */
  truncated?: string;
}

/** Result of reading a pcap file: the file, or why it could not be read. */
export type PcapReadResult = { ok: true; file: PcapFile } | { ok: false; reason: string };

/** Link types the reader accepts. */
export const PCAP_LINKTYPES: readonly number[] = [
  LINKTYPE.ETHERNET,
  LINKTYPE.RAW,
  LINKTYPE.IPV4,
  LINKTYPE.IPV6,
];

/**
 * Reads a classic pcap file, or a pcapng file (pcapng.ts). Never throws: a bad magic, version or
 * link type is an error result; a record cut short at the end of the file (as a killed tcpdump
 * leaves it) ends the record list and sets `truncated`. `linkTypes`: the link types the caller
 * can use (default PCAP_LINKTYPES); others are an error result.
 */
export function readPcap(
  buf: Uint8Array,
  linkTypes: readonly number[] = PCAP_LINKTYPES,
): PcapReadResult {
  if (isPcapng(buf)) return readPcapng(buf, linkTypes);
  if (buf.length < 24) return { ok: false, reason: 'pcap global header truncated' };
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magicLe = dv.getUint32(0, true);
  let le: boolean;
  let nano: boolean;
  if (magicLe === 0xa1b2c3d4 || magicLe === 0xa1b23c4d) {
    le = true;
    nano = magicLe === 0xa1b23c4d;
  } else {
    const magicBe = dv.getUint32(0, false);
    if (magicBe !== 0xa1b2c3d4 && magicBe !== 0xa1b23c4d)
      return { ok: false, reason: 'not a pcap or pcapng file (bad magic)' };
    le = false;
    nano = magicBe === 0xa1b23c4d;
  }
  const major = dv.getUint16(4, le);
  if (major !== 2) return { ok: false, reason: `unsupported pcap version ${major}` };
  const snaplen = dv.getUint32(16, le);
  const linkType = dv.getUint32(20, le) & 0x0fffffff;
  if (!linkTypes.includes(linkType))
    return { ok: false, reason: `unsupported link type ${linkType}` };
  const records: PcapRecord[] = [];
  let truncated: string | undefined;
  let p = 24;
  while (p < buf.length) {
    if (p + 16 > buf.length) {
      truncated = `record ${records.length + 1} at byte ${p}: header cut short`;
      break;
    }
    const sec = dv.getUint32(p, le);
    const sub = dv.getUint32(p + 4, le);
    const incl = dv.getUint32(p + 8, le);
    const orig = dv.getUint32(p + 12, le);
    if (p + 16 + incl > buf.length) {
      truncated = `record ${records.length + 1} at byte ${p} cut short (${incl} bytes, ${buf.length - p - 16} left)`;
      break;
    }
    records.push({
      timestampUs: sec * 1e6 + (nano ? Math.floor(sub / 1000) : sub),
      data: buf.subarray(p + 16, p + 16 + incl),
      origLength: orig,
    });
    p += 16 + incl;
  }
  const file: PcapFile = { linkType, snaplen, bigEndian: !le, nanosecond: nano, records };
  if (truncated) file.truncated = truncated;
  return { ok: true, file };
}

/** Frames to write: bytes with an optional timestamp (microseconds; default 1 s apart from 0). */
export interface PcapWriteFrame {
  data: Uint8Array;
  timestampUs?: number;
}

/** Bytes `writePcap` produces for `frames`. */
export function pcapLength(frames: readonly (Uint8Array | PcapWriteFrame)[]): number {
  let n = 24;
  for (const f of frames) n += 16 + (f instanceof Uint8Array ? f.length : f.data.length);
  return n;
}

/**
 * Writes a little-endian microsecond pcap file of `frames` with `linkType` (1 Ethernet or 101 raw
 * IP). Returns a new Buffer.
 */
export function writePcap(
  frames: readonly (Uint8Array | PcapWriteFrame)[],
  linkType: number = LINKTYPE.ETHERNET,
  snaplen = 262144,
): Buffer {
  if (linkType !== LINKTYPE.ETHERNET && linkType !== LINKTYPE.RAW) {
    throw new PacketEncodeError(
      `pcap link type must be 1 (Ethernet) or 101 (raw IP), got ${linkType}`,
    );
  }
  checkInt(snaplen, 'pcap snaplen', 1, 0x7fffffff);
  const out = Buffer.alloc(pcapLength(frames));
  out.writeUInt32LE(0xa1b2c3d4, 0);
  out.writeUInt16LE(2, 4);
  out.writeUInt16LE(4, 6);
  out.writeInt32LE(0, 8);
  out.writeUInt32LE(0, 12);
  out.writeUInt32LE(snaplen, 16);
  out.writeUInt32LE(linkType, 20);
  let p = 24;
  frames.forEach((f, i) => {
    const data = f instanceof Uint8Array ? f : f.data;
    const ts = f instanceof Uint8Array ? undefined : f.timestampUs;
    const t = checkInt(ts ?? i * 1e6, 'pcap timestamp', 0, 0xffffffff * 1e6);
    out.writeUInt32LE(Math.floor(t / 1e6), p);
    out.writeUInt32LE(t % 1e6, p + 4);
    out.writeUInt32LE(data.length, p + 8);
    out.writeUInt32LE(data.length, p + 12);
    out.set(data, p + 16);
    p += 16 + data.length;
  });
  return out;
}

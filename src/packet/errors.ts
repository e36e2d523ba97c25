/**
 * The packet library's coded error: thrown only when *building* a frame (an encoder or the test
 * builder is handed a field that cannot be encoded, or a buffer too small). Decoders never throw;
 * they return a malformed verdict instead (see `view.ts`).
 */
import { IpvsError } from '../core/errors.js';

const MSG = 'Invalid operation.  Possibly wrong module version, address not unicast, ...';

/** A field that cannot be encoded (out of range, does not fit, buffer too small). */
export class PacketEncodeError extends IpvsError {
  /** Stable code, matched by callers. */
  static readonly code = 'IPVS_ERR_PACKET_ENCODE';
  constructor(detail: string) {
    super('IPVS_ERR_PACKET_ENCODE', 'EINVAL', MSG, detail);
    this.name = 'PacketEncodeError';
  }
}

/** Throws PacketEncodeError unless `v` is an integer in [min, max]. */
export function checkInt(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new PacketEncodeError(`${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

/** Throws PacketEncodeError unless `len` bytes fit in `buf` at `offset`. */
export function checkRoom(buf: Uint8Array, offset: number, len: number, what: string): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + len > buf.length) {
    throw new PacketEncodeError(
      `${what}: ${len} bytes do not fit in a ${buf.length}-byte buffer at offset ${offset}`,
    );
  }
}

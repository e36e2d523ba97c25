/**
 * The two socket calls the splice's last-data path needs from the native addon (native/): a
 * peek for a pending FIN, and a send that carries our FIN on the data's own segment (MSG_MORE,
 * then shutdown). libuv offers neither. Without the addon (not built, not Linux) the splice sends
 * its FIN by libuv's shutdown, one loop turn after the data.
 */
import { loadNative } from '../io/native.js';

export interface LastDataAddon {
  /** 1 when the peer's FIN is the next thing to read, 0 when not (or data is unread), < 0 errno. */
  tcpPeekEof(fd: number): number;
  /** Sends `len` bytes with MSG_MORE and shuts the write side once all went: bytes sent or -errno. */
  tcpSendFin(fd: number, buf: Uint8Array, len: number): number;
}

/** The addon's last-data calls, or null when the addon (or this build of it) lacks them. */
export function lastDataAddon(): LastDataAddon | null {
  if (process.env.IPVS_PROXY_LAST_DATA === '0') return null;
  try {
    const a = loadNative() as unknown as Partial<LastDataAddon>;
    return typeof a.tcpPeekEof === 'function' && typeof a.tcpSendFin === 'function'
      ? (a as LastDataAddon)
      : null;
  } catch {
    return null;
  }
}

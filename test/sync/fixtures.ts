/** Sync records for the wire and tshark tests. */
import { parseIp } from '../../src/core/addr.js';
import type { SyncConn } from '../../src/sync/wire.js';

/** An address as the four words core and the sync records keep. */
export const w = (a: string): Uint32Array => parseIp(a)!.words;

/** TCP 192.0.2.2:40000 → 203.0.113.10:80 → 198.51.100.11:8080, state 1, 900 s, no flags. */
export function syncConn(o: Partial<SyncConn> = {}): SyncConn {
  return {
    af: 2,
    protocol: 6,
    flags: 0,
    state: 1,
    cport: 40000,
    vport: 80,
    dport: 8080,
    fwmark: 0,
    timeout: 900,
    caddr: w('192.0.2.2'),
    vaddr: w('203.0.113.10'),
    daddr: w('198.51.100.11'),
    ...o,
  };
}

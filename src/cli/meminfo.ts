/**
 * The host's available memory as IPVS's memory-pressure defences count it (spec §3.5). Core does no
 * I/O and takes the figure as a parameter (`Ipvs`'s `availMemPages`); the daemon passes this.
 */
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';

/**
 * Free plus buffer memory in 4 KiB pages from the text of /proc/meminfo (MemFree + Buffers), null
 * when either line is missing.
 */
export function meminfoAvailPages(text: string): number | null {
  const kb = (name: string): number | null => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  const free = kb('MemFree');
  const buffers = kb('Buffers');
  return free === null || buffers === null ? null : Math.floor((free + buffers) / 4);
}

/**
 * This machine's available memory as the defences count it (spec §3.5): update_defense_level
 * takes si_meminfo's freeram + bufferram, which /proc/meminfo shows as MemFree and Buffers;
 * elsewhere the free memory Node.js reports.
 */
export function hostAvailMemPages(): number {
  let pages: number | null = null;
  try {
    pages = meminfoAvailPages(readFileSync('/proc/meminfo', 'latin1'));
  } catch {
    // not Linux (or no procfs): fall back below
  }
  return pages ?? Math.floor(freemem() / 4096);
}

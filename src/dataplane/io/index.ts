/**
 * Frame I/O (issue 7): batched frame sources and sinks for the packet data plane. Backends:
 * AF_PACKET with memory-mapped rings (`openAfPacket`), TUN/TAP (`openTun`), an in-memory pair
 * (`createMemoryPair`) and pcap files (`openPcap`). The first two need the native addon
 * (native/), loaded only when they are opened. See docs/native.md.
 */
export * from './types.js';
export * from './errors.js';
export { RxLoop, StagedTx, type RxSource } from './rx-loop.js';
export { hugeTableAlloc, loadNative, nativeAvailable, nativeAddonPath } from './native.js';
export * from './iface.js';
export * from './af-packet.js';
export * from './tun.js';
export * from './memory.js';
export * from './pcap.js';

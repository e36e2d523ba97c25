/**
 * The proxy data plane: IPVS's Masq semantics over TCP and UDP sockets, no privileges needed.
 * See `./plane.ts` and docs/proxy.md.
 */
export { ProxyDataplane, type ProxyDataplaneOptions, type ListenerInfo } from './plane.js';
export type { ProxyCounters, ProxyLimits } from './context.js';
export * from './errors.js';
export {
  decodeProxyHeader,
  encodeProxyV1,
  encodeProxyV2,
  type ProxyAddrs,
} from './proxy-protocol.js';

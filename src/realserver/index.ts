/**
 * The real-server side of IPVS tunnelling (issue 7): decapsulate IPIP, GUE and GRE in user space
 * and hand the inner packets to the local stack through a TUN device. See docs/realserver.md.
 */
export * from './decap.js';
export * from './host.js';
export * from './server.js';

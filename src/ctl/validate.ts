/**
 * Shape checks for commands arriving from outside (the control socket, the state file): the right
 * fields with the right JSON types, so core only ever sees well-typed values. Value ranges are
 * core's business. Throws BadRequestError.
 */
import { COMMAND_NAMES } from './backend.js';
import { BadRequestError } from './errors.js';
import { ProxyOptionError } from '../dataplane/proxy/errors.js';
import type { Command } from './types.js';

type Obj = Record<string, unknown>;

/** The values of `ext['proxy-protocol']` ('' and 'none': no header). */
const PROXY_PROTOCOL = new Set(['v1', 'v2', 'none', '']);

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function need(o: Obj, key: string, type: 'number' | 'string', where: string): void {
  if (typeof o[key] !== type) throw new BadRequestError(`${where}.${key} must be a ${type}`);
}

function opt(o: Obj, key: string, type: 'number' | 'string', where: string): void {
  if (o[key] !== undefined && typeof o[key] !== type)
    throw new BadRequestError(`${where}.${key} must be a ${type}`);
}

function serviceKey(v: unknown, where: string): void {
  if (!isObj(v)) throw new BadRequestError(`${where} must be an object`);
  for (const k of ['af', 'protocol', 'port', 'fwmark']) need(v, k, 'number', where);
  need(v, 'addr', 'string', where);
}

function serviceSpec(v: unknown, where: string): void {
  serviceKey(v, where);
  const o = v as Obj;
  need(o, 'scheduler', 'string', where);
  for (const k of ['flags', 'timeout', 'netmask']) need(o, k, 'number', where);
  need(o, 'pe', 'string', where);
  if (o.ext !== undefined) {
    if (!isObj(o.ext) || Object.values(o.ext).some((x) => typeof x !== 'string'))
      throw new BadRequestError(`${where}.ext must map names to strings`);
    // every data plane keeps and saves the options (`-S` writes them), so each is checked here
    for (const [k, v] of Object.entries(o.ext)) {
      if (k !== 'proxy-protocol') throw new BadRequestError(`${where}.ext: unknown option '${k}'`);
      if (!PROXY_PROTOCOL.has(v as string))
        throw new ProxyOptionError(
          `--proxy-protocol '${String(v).slice(0, 64)}': expected v1 or v2`,
        );
    }
  }
}

function destKey(v: unknown, where: string): void {
  if (!isObj(v)) throw new BadRequestError(`${where} must be an object`);
  opt(v, 'af', 'number', where);
  need(v, 'addr', 'string', where);
  need(v, 'port', 'number', where);
}

function destSpec(v: unknown, where: string): void {
  destKey(v, where);
  for (const k of ['fwd', 'weight', 'uThreshold', 'lThreshold', 'tunType', 'tunPort', 'tunFlags'])
    need(v as Obj, k, 'number', where);
}

/**
 * Throws BadRequestError unless the request's `id` can be echoed in its reply: any JSON value
 * whose text the reply can hold (an array nested thousands deep parses but cannot be written).
 */
export function validateId(id: unknown): void {
  if (id === undefined || typeof id !== 'object' || id === null) return;
  try {
    JSON.stringify(id);
  } catch {
    throw new BadRequestError('id cannot be echoed in a reply (nested too deep)');
  }
}

/** Throws BadRequestError unless `c` has the shape of a Command. */
export function validateCommand(c: unknown): asserts c is Command {
  if (!isObj(c)) throw new BadRequestError('a command must be a JSON object');
  const name = c.cmd;
  if (typeof name !== 'string' || !COMMAND_NAMES.has(name)) {
    // an object's text can be as deep as the request (String of a nested array overflows)
    const what =
      typeof name === 'string'
        ? `'${name.length > 64 ? `${name.slice(0, 64)}…` : name}'`
        : typeof name === 'object' && name !== null
          ? `(cmd is ${Array.isArray(name) ? 'an array' : 'an object'})`
          : `'${String(name)}'`;
    throw new BadRequestError(`unknown command ${what}`);
  }
  switch (name) {
    case 'newService':
    case 'setService':
      serviceSpec(c.service, 'service');
      break;
    case 'delService':
    case 'getService':
    case 'getDests':
      serviceKey(c.service, 'service');
      break;
    case 'newDest':
    case 'setDest':
      serviceKey(c.service, 'service');
      destSpec(c.dest, 'dest');
      break;
    case 'delDest':
      serviceKey(c.service, 'service');
      destKey(c.dest, 'dest');
      break;
    case 'zero':
      if (c.service !== undefined) serviceKey(c.service, 'service');
      break;
    case 'setConfig': {
      const t = c.timeouts;
      if (!isObj(t)) throw new BadRequestError('timeouts must be an object');
      for (const k of ['tcp', 'tcpfin', 'udp']) need(t, k, 'number', 'timeouts');
      break;
    }
    case 'newDaemon': {
      const d = c.daemon;
      if (!isObj(d)) throw new BadRequestError('daemon must be an object');
      need(d, 'state', 'number', 'daemon');
      need(d, 'mcastIfn', 'string', 'daemon');
      need(d, 'syncId', 'number', 'daemon');
      opt(d, 'syncMaxlen', 'number', 'daemon');
      opt(d, 'mcastGroup', 'string', 'daemon');
      opt(d, 'mcastPort', 'number', 'daemon');
      opt(d, 'mcastTtl', 'number', 'daemon');
      break;
    }
    case 'getConnsPage':
      for (const k of ['from', 'max'] as const) {
        const v = c[k];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff)
          throw new BadRequestError(`${k} must be a non-negative integer`);
      }
      if ((c.max as number) < 1 || (c.max as number) > 1_000_000)
        throw new BadRequestError('max must be in 1..1000000');
      break;
    case 'delDaemon':
      if (c.state !== 1 && c.state !== 2) throw new BadRequestError('state must be 1 or 2');
      break;
    case 'setSysctl': {
      if (typeof c.name !== 'string') throw new BadRequestError('name must be a string');
      const v = c.value;
      const ok =
        typeof v === 'number' ||
        typeof v === 'string' ||
        (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number'));
      if (!ok) throw new BadRequestError('value must be a number, a pair of numbers or a string');
      break;
    }
    case 'setFwmarkRules':
      if (!Array.isArray(c.rules) || !c.rules.every((r) => typeof r === 'string'))
        throw new BadRequestError('rules must be an array of strings');
      break;
    default:
      break;
  }
}

/**
 * Identity/echo server for the network-namespace tests, run inside a real-server namespace with
 * `ip netns exec NS node dist/test/helpers/echo-server.js --name rs0 --tcp 8080 --udp 8080`:
 *
 * - TCP: on accept, sends `NAME\n`, then echoes every byte back until the client half-closes.
 * - UDP: answers every datagram with `NAME\n` followed by the datagram's bytes.
 *
 * It prints `ready tcp=P udp=P` on stdout once listening, logs connections on stderr, and exits
 * on SIGTERM/SIGINT. With `--client HOST:PORT` it is the matching client instead (run it in the
 * client namespace): it connects over TCP (or UDP with `--udp-client`), sends `--send HEX`,
 * reads the reply and prints one JSON line `{"name":…,"echo":HEX,"local":…}` on stdout; exit status
 * 0 on success, 1 on error or after `--timeout MS` (default 5000).
 */
import { createSocket } from 'node:dgram';
import { connect, createServer, type Socket } from 'node:net';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), Number(s.slice(i + 1))];
}

/** Splits `NAME\n` + payload. */
function splitReply(b: Buffer): { name: string; echo: Buffer } | undefined {
  const nl = b.indexOf(10);
  return nl < 0 ? undefined : { name: b.subarray(0, nl).toString(), echo: b.subarray(nl + 1) };
}

function runServer(): void {
  const name = arg('--name') ?? 'server';
  const host = arg('--host');
  const tcpPort = arg('--tcp');
  const udpPort = arg('--udp');
  const log = (m: string) => process.stderr.write(`echo-server ${name}: ${m}\n`);
  let pending = 0;
  const ready: string[] = [];
  const done = (what: string) => {
    ready.push(what);
    if (--pending === 0) process.stdout.write(`ready ${ready.join(' ')}\n`);
  };
  const closers: (() => void)[] = [];
  if (tcpPort !== undefined) {
    pending++;
    const srv = createServer((s: Socket) => {
      log(
        `tcp connection from ${s.remoteAddress}:${s.remotePort} to ${s.localAddress}:${s.localPort}`,
      );
      s.write(`${name}\n`);
      s.pipe(s);
      s.on('error', () => s.destroy());
    });
    srv.listen({ port: Number(tcpPort), host, ipv6Only: false }, () => {
      const a = srv.address();
      done(`tcp=${typeof a === 'object' && a ? a.port : tcpPort}`);
    });
    closers.push(() => srv.close());
  }
  if (udpPort !== undefined) {
    pending++;
    const type = host?.includes(':') ? 'udp6' : 'udp4';
    const u = createSocket(type);
    u.on('message', (msg, rinfo) => {
      log(`udp datagram from ${rinfo.address}:${rinfo.port}`);
      u.send(Buffer.concat([Buffer.from(`${name}\n`), msg]), rinfo.port, rinfo.address);
    });
    u.bind(Number(udpPort), host, () => done(`udp=${u.address().port}`));
    closers.push(() => u.close());
  }
  if (pending === 0) {
    log('nothing to serve: give --tcp PORT and/or --udp PORT');
    process.exit(2);
  }
  const stop = () => {
    for (const c of closers) c();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function runClient(target: string): void {
  const [host, port] = splitHostPort(target);
  const data = Buffer.from(arg('--send') ?? '', 'hex');
  const timeout = Number(arg('--timeout') ?? 5000);
  const fail = (m: string) => {
    process.stderr.write(`echo-client: ${m}\n`);
    process.exit(1);
  };
  setTimeout(() => fail(`timeout after ${timeout} ms`), timeout).unref();
  if (process.argv.includes('--udp-client')) {
    const u = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    u.on('message', (msg) => {
      const r = splitReply(msg);
      if (!r) return fail('reply without a name line');
      process.stdout.write(`${JSON.stringify({ name: r.name, echo: r.echo.toString('hex') })}\n`);
      process.exit(0);
    });
    u.on('error', (e) => fail(e.message));
    u.send(data, port, host);
    return;
  }
  const chunks: Buffer[] = [];
  const s = connect({ host, port }, () => {
    s.end(data);
  });
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('error', (e) => fail(`${e.message}`));
  s.on('end', () => {
    const r = splitReply(Buffer.concat(chunks));
    if (!r) return fail('reply without a name line');
    const local = `${s.localAddress}:${s.localPort}`;
    process.stdout.write(
      `${JSON.stringify({ name: r.name, echo: r.echo.toString('hex'), local })}\n`,
    );
    process.exit(0);
  });
}

const target = arg('--client');
if (target !== undefined) runClient(target);
else runServer();

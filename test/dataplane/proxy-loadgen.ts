/**
 * A child process that opens many client connections to a VIP (so the test process's file
 * descriptors go to the proxy and the backend only). argv: port, count. Messages to the parent:
 * {ready: n} once every connection got the backend's greeting, {closed: n} after {cmd:'close'}.
 */
import * as net from 'node:net';

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
const socks: net.Socket[] = [];
let greeted = 0;
let closedN = 0;
const send = (m: object): void => {
  process.send?.(m);
};

function open(): void {
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: false });
  socks.push(s);
  s.once('data', () => {
    if (++greeted === count) send({ ready: greeted });
  });
  s.on('error', (e) => send({ error: e.message }));
  s.on('close', () => {
    if (++closedN === count) send({ closed: closedN });
  });
}

async function main(): Promise<void> {
  // in batches that fit the listen backlog, each greeted before the next opens
  for (let i = 0; i < count; i += 250) {
    for (let j = i; j < Math.min(count, i + 250); j++) open();
    const want = Math.min(count, i + 250);
    while (greeted < want) await new Promise((r) => setTimeout(r, 2));
  }
}

process.on('message', (m: { cmd?: string }) => {
  if (m.cmd === 'close') for (const s of socks) s.end();
  if (m.cmd === 'exit') process.exit(0);
});
void main();

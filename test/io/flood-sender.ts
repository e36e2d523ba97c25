/**
 * Flood sender (a child process of the AF_PACKET tests and of bench/io): opens an AF_PACKET
 * socket on an interface and sends test frames through its TX ring as fast as the ring drains,
 * committing one batch per event-loop turn, for a duration or a frame count. Prints one JSON line
 * with what it sent.
 *
 *   node dist/test/io/flood-sender.js --iface vA [--netns NS] [--size 128] [--seconds 2]
 *        [--count N] [--batch 64] [--tag 1234]
 */
import { openAfPacket } from '../../src/dataplane/io/index.js';
import { testFrame } from './lab.js';

function arg(name: string, dflt?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const iface = arg('iface');
if (!iface) {
  console.error(
    'usage: flood-sender --iface IF [--netns NS] [--size B] [--seconds S] [--count N] [--batch B] [--tag T]',
  );
  process.exit(2);
}
const size = Number(arg('size', '128'));
const seconds = Number(arg('seconds', '2'));
const count = Number(arg('count', '0'));
const batch = Number(arg('batch', '64'));
const tag = Number(arg('tag', '1'));

const io = openAfPacket(iface, {
  netns: arg('netns'),
  txFrameCount: 4096,
  rxBlockCount: 2,
  rxBlockSize: 1 << 16,
});
const proto = testFrame(size, 0, tag, io.iface.macBytes);
let seq = 0;
const t0 = process.hrtime.bigint();
const deadline = t0 + BigInt(Math.round(seconds * 1e9));

function turn(): void {
  for (let b = 0; b < 16; b++) {
    let k = 0;
    while (k < batch && (count === 0 || seq < count)) {
      const off = io.txAlloc(size);
      if (off < 0) break;
      proto.copy(io.txData, off);
      io.txData.writeUInt32BE(seq, off + 18);
      seq++;
      k++;
    }
    io.txCommit();
    if (k < batch) break;
  }
  const now = process.hrtime.bigint();
  if ((count > 0 && seq >= count) || (count === 0 && now >= deadline)) {
    const wait = (): void => {
      if (io.txInFlight() > 0 && process.hrtime.bigint() - now < 2_000_000_000n) {
        io.txCommit();
        setTimeout(wait, 1);
        return;
      }
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      console.log(
        JSON.stringify({ sent: seq, seconds: secs, fps: Math.round(seq / secs), stats: io.stats }),
      );
      void io.close();
    };
    wait();
    return;
  }
  setImmediate(turn);
}
turn();

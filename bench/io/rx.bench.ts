/**
 * Receive throughput of the AF_PACKET backend through the TPACKET_V3 RX ring on a veth pair
 * between two namespaces it creates (and deletes at the end). Needs root. Two modes:
 *
 *   flood: child processes (dist/test/io/flood-sender.js, sending through their own TX rings)
 *          flood the pair for --seconds while the receiver runs; reports frames/s received,
 *          receiver CPU per frame and kernel drops (drops > 0: the receiver was the bottleneck).
 *   drain: one child sends --count frames into the ring while the receiver is stopped; then the
 *          receiver starts and the time to drain the ring is measured. This isolates the receive
 *          side (ring walk + batch delivery + loop) from the sender sharing the CPUs.
 *
 *   node dist/bench/io/rx.bench.js [--mode flood|drain] [--seconds 3] [--count 100000]
 *        [--size 64] [--batch 64] [--budget 256] [--block-count 64] [--senders 1] [--walk native|js]
 *
 * The receiver reads each frame's EtherType and nothing else.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openAfPacket } from '../../src/dataplane/io/index.js';
import { Lab, TEST_ETHERTYPE, labSkipReason } from '../../test/io/lab.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

const SENDER = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'test',
  'io',
  'flood-sender.js',
);

function runSender(args: string[]): Promise<{ sent: number; fps: number }> {
  const child = spawn(process.execPath, [SENDER, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((res, rej) =>
    child.on('exit', (code) => {
      if (code !== 0) rej(new Error(`flood sender exited with ${code}`));
      else res(JSON.parse(out.trim().split('\n').pop()!) as { sent: number; fps: number });
    }),
  );
}

async function main(): Promise<void> {
  const why = labSkipReason();
  if (why) {
    console.log(`rx bench skipped: ${why}`);
    return;
  }
  const mode = arg('mode', 'flood') === 'drain' ? 'drain' : 'flood';
  const seconds = Number(arg('seconds', '3'));
  const count = Number(arg('count', '100000'));
  const size = Number(arg('size', '64'));
  const batchSize = Number(arg('batch', '64'));
  const budget = Number(arg('budget', '256'));
  const blockCount = Number(arg('block-count', mode === 'drain' ? '256' : '64'));
  const senders = mode === 'drain' ? 1 : Number(arg('senders', '1'));
  const rxWalk = arg('walk', 'native') === 'js' ? 'js' : 'native';
  const lab = new Lab();
  try {
    const nsA = lab.netns('ba');
    const nsB = lab.netns('bb');
    const vA = lab.ifname('iba');
    const vB = lab.ifname('ibb');
    lab.veth(nsA, vA, nsB, vB);
    const rx = openAfPacket(vB, {
      netns: nsB,
      batchSize,
      budget,
      rxBlockCount: blockCount,
      rxWalk,
    });
    let ours = 0;
    let first = 0n;
    let last = 0n;
    const handler = (b: import('../../src/dataplane/io/index.js').FrameBatch): void => {
      const d = b.data;
      const before = ours;
      for (let i = 0; i < b.count; i++) {
        const o = b.offset(i);
        if (((d[o + 12]! << 8) | d[o + 13]!) === TEST_ETHERTYPE) ours++;
      }
      if (ours !== before) last = process.hrtime.bigint();
    };
    rx.kernelStats(); // reset the kernel counters
    const common = ['--netns', nsA, '--iface', vA, '--size', String(size)];
    let reports: { sent: number; fps: number }[];
    let cpu: NodeJS.CpuUsage;
    if (mode === 'flood') {
      rx.onFrames(handler);
      first = process.hrtime.bigint();
      const cpu0 = process.cpuUsage();
      reports = await Promise.all(
        Array.from({ length: senders }, () => runSender([...common, '--seconds', String(seconds)])),
      );
      await new Promise((r) => setTimeout(r, 200));
      cpu = process.cpuUsage(cpu0);
    } else {
      reports = [await runSender([...common, '--count', String(count)])];
      await new Promise((r) => setTimeout(r, 50)); // the last block retires after rxRetireMs
      const cpu0 = process.cpuUsage();
      first = process.hrtime.bigint();
      rx.onFrames(handler);
      const sent = reports[0]!.sent;
      // Until everything arrived, or nothing more for 200 ms (frames the kernel dropped).
      let seen = -1;
      let quietSince = Date.now();
      while (ours < sent && Date.now() - quietSince < 200) {
        if (ours !== seen) {
          seen = ours;
          quietSince = Date.now();
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      cpu = process.cpuUsage(cpu0);
    }
    const k = rx.kernelStats();
    await rx.close();
    const sent = reports.reduce((a, r) => a + r.sent, 0);
    const sentFps = reports.reduce((a, r) => a + r.fps, 0);
    const secs = Number(last - first) / 1e9;
    const cpuSec = (cpu.user + cpu.system) / 1e6;
    const s = rx.stats;
    console.log(
      `AF_PACKET RX ring (${mode}), veth, ${size}-byte frames, batch ${batchSize}, budget ${budget}, ` +
        `${blockCount} x 256 KiB blocks, ${rxWalk} ring walk`,
    );
    console.log(
      `  senders:  ${senders} process(es), ${sent} frames, ${sentFps} frames/s (TX rings, one kick per 64)`,
    );
    console.log(
      `  received: ${ours} frames in ${secs.toFixed(3)} s = ${Math.round(ours / secs)} frames/s`,
    );
    console.log(
      `  receiver CPU: ${cpuSec.toFixed(2)} s = ${Math.round((cpuSec * 1e9) / Math.max(1, ours))} ns/frame, ` +
        `${Math.round(ours / cpuSec)} frames per CPU-second`,
    );
    console.log(`  kernel:   ${k.packets} seen, ${k.drops} dropped (ring full)`);
    console.log(
      `  loop:     ${s.rxBatches} batches (mean ${(s.rxFrames / Math.max(1, s.rxBatches)).toFixed(1)}, ` +
        `max ${s.rxMaxBatch}), ${s.rxYields} yields`,
    );
  } finally {
    lab.cleanup();
  }
}

await main();

/**
 * `ipvs realserver` end to end, one test per tunnel type, across network namespaces
 * (test/helpers/netns.ts): the client connects over TCP to the VIP; in the director namespace a
 * small test-only forwarder (AF_PACKET + the packet library's `encapsulate`, as the director's TUN
 * transmitter does) wraps every frame for the VIP in IPIP, GUE or GRE toward the real server; the
 * real server runs the real CLI with the VIP on `lo` and an echo server on VIP:8080. The connection
 * must complete, the bytes come back byte-identical, the reply must go straight from the server to
 * the client (the director never sees a packet from the VIP), and the real server's counters must
 * say what happened. Frames that are not tunnelled, or not for the server, are left to the kernel.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parseIp } from '../../src/core/addr.js';
import {
  PKTTYPE,
  TP_STATUS,
  nativeAvailable,
  openAfPacket,
  type AfPacketIO,
  type FrameBatch,
} from '../../src/dataplane/io/index.js';
import {
  ENCAP,
  EncapParams,
  PacketBuilder,
  PacketView,
  TCP_FLAG,
  decodeEthernet,
  encapsulate,
  l4Checksum,
  l4ChecksumFieldOffset,
  writeMac,
} from '../../src/packet/index.js';
import { IFACE, NET, Topology, netnsSkipReason, type NsChild } from '../helpers/netns.js';

const skip =
  netnsSkipReason() ??
  (nativeAvailable() ? undefined : 'needs the native addon (node native/build.mjs)');

const GUE_PORT = 6080;
const VIP = parseIp(NET.vip)!.words[0]!;

/**
 * Test-only director: every IPv4 frame for the VIP arriving on the director's front interface is
 * encapsulated toward real server 0 and sent on the back interface. A frame whose transport
 * checksum is still partial (TP_STATUS_CSUMNOTREADY: the client's kernel left it to "hardware")
 * gets its checksum computed here, or, with `remcsum`, is sent with GUE remote checksum offload so
 * the real server completes it (what IPVS does for CHECKSUM_PARTIAL packets with --tun-remcsum).
 */
class TestForwarder {
  readonly p = new EncapParams();
  remcsum = false;
  encapsulated = 0;
  partial = 0;
  /** Frames from the VIP seen on the director: replies that did not go directly to the client. */
  fromVip = 0;
  readonly #v = new PacketView();
  readonly #v2 = new PacketView();
  readonly #buf = Buffer.alloc(70_000);
  readonly #serverMac = new Uint8Array(6);
  readonly #myMac = new Uint8Array(6);

  private constructor(
    readonly front: AfPacketIO,
    readonly back: AfPacketIO,
    t: Topology,
  ) {
    writeMac(t.mac(t.ns.servers[0]!, IFACE.back), this.#serverMac, 0);
    writeMac(t.mac(t.ns.director, IFACE.back), this.#myMac, 0);
    this.p.src[0] = parseIp(NET.directorBack)!.words[0]!;
    this.p.dst[0] = parseIp(NET.serverBack(0))!.words[0]!;
    this.p.dstPort = GUE_PORT;
    front.onFrames(this.#onFrames);
    // Replies must not come back through the director on either side.
    back.onFrames((b) => {
      const v = this.#v2;
      for (let i = 0; i < b.count; i++) {
        if (b.pktType(i) === PKTTYPE.OUTGOING) continue;
        if (decodeEthernet(v, b.data, b.offset(i), b.length(i)) === 0 && v.ipVersion === 4) {
          if (v.src[0] === VIP) this.fromVip++;
        }
      }
    });
  }

  static open(t: Topology): TestForwarder {
    const front = openAfPacket(IFACE.front, { netns: t.ns.director });
    const back = openAfPacket(IFACE.back, { netns: t.ns.director });
    return new TestForwarder(front, back, t);
  }

  /** Tunnel settings for the next frames. */
  configure(type: number, csum: boolean): void {
    this.p.type = type;
    this.p.csum = csum;
    this.remcsum = type === ENCAP.GUE && csum;
    this.p.remcsum = this.remcsum;
  }

  /** Sends one raw Ethernet payload (after our header) to real server 0 on the back network. */
  sendRaw(ipPacket: Buffer): void {
    const f = Buffer.alloc(14 + ipPacket.length);
    f.set(this.#serverMac, 0);
    f.set(this.#myMac, 6);
    f.writeUInt16BE(0x0800, 12);
    ipPacket.copy(f, 14);
    assert.ok(this.back.send(f));
    this.back.txCommit();
  }

  readonly #onFrames = (b: FrameBatch): void => {
    const v = this.#v;
    const head = 14 + 60;
    for (let i = 0; i < b.count; i++) {
      if (b.pktType(i) === PKTTYPE.OUTGOING) continue;
      if (decodeEthernet(v, b.data, b.offset(i), b.length(i)) !== 0 || v.ipVersion !== 4) continue;
      if (v.src[0] === VIP) this.fromVip++;
      if (v.dst[0] !== VIP) continue;
      const len = v.ipEnd - v.l3Offset;
      const buf = this.#buf;
      buf.set(b.data.subarray(v.l3Offset, v.ipEnd), head);
      const l4 = v.l4Offset - v.l3Offset;
      const field = l4ChecksumFieldOffset(v.protocol);
      this.p.remcsumStart = -1;
      this.p.remcsumOffset = -1;
      if ((b.status(i) & TP_STATUS.CSUMNOTREADY) !== 0 && field >= 0) {
        this.partial++;
        if (this.remcsum) {
          this.p.remcsumStart = l4;
          this.p.remcsumOffset = field;
        } else {
          const c = l4Checksum(2, v.src, v.dst, v.protocol, buf, head + l4, len - l4);
          buf.writeUInt16BE(c, head + l4 + field);
        }
      }
      this.p.ipId = (this.p.ipId + 1) & 0xffff;
      this.p.srcPort = 32768 + (v.srcPort & 0x3fff);
      const start = encapsulate(this.p, buf, head, len) - 14;
      buf.set(this.#serverMac, start);
      buf.set(this.#myMac, start + 6);
      buf.writeUInt16BE(0x0800, start + 12);
      if (this.back.send(buf.subarray(start, head + len))) this.encapsulated++;
    }
    this.back.txCommit();
  };

  async close(): Promise<void> {
    await this.front.close();
    await this.back.close();
  }
}

/** The counters the real server prints on SIGUSR2. */
async function counters(rs: NsChild): Promise<Record<string, number>> {
  const from = rs.stderr.length;
  rs.proc.kill('SIGUSR2');
  const m = await rs.waitFor(/counters (\{.*\})/, { stream: 'stderr', from });
  return JSON.parse(m[1]!) as Record<string, number>;
}

describe('ipvs realserver (user-space decapsulation, end to end)', { skip }, () => {
  let t: Topology;
  let fwd: TestForwarder;

  before(async () => {
    t = Topology.create({ servers: 1 });
    t.setupTun();
    t.noClientGso();
    // The echo server listens on every address, so it answers on VIP:8080 too.
    await t.startEchoServer(0, { tcp: 8080, udp: 8080 });
    fwd = TestForwarder.open(t);
  });
  after(async () => {
    await fwd?.close();
    t?.cleanup();
  });

  it('without ipvs realserver the tunnelled connection does not complete (the kernel cannot decapsulate)', async () => {
    fwd.configure(ENCAP.IPIP, false);
    const before = fwd.encapsulated;
    await assert.rejects(
      t.echo(t.ns.client, NET.vip, 8080, Buffer.from('nobody home'), { timeoutMs: 1500 }),
      /failed/,
    );
    assert.ok(fwd.encapsulated > before, 'the director did send the SYN through the tunnel');
  });

  const cases: { name: string; args: string[]; type: number; csum: boolean }[] = [
    { name: 'ipip', args: ['--decap', 'ipip'], type: ENCAP.IPIP, csum: false },
    {
      name: 'gue',
      args: ['--decap', 'gue', '--gue-port', String(GUE_PORT)],
      type: ENCAP.GUE,
      csum: false,
    },
    {
      name: 'gue with checksum and remote checksum offload',
      args: ['--decap', 'gue', '--gue-port', String(GUE_PORT)],
      type: ENCAP.GUE,
      csum: true,
    },
    { name: 'gre', args: ['--decap', 'gre'], type: ENCAP.GRE, csum: false },
    { name: 'gre with checksum', args: ['--decap', 'gre'], type: ENCAP.GRE, csum: true },
  ];

  for (const c of cases) {
    it(`${c.name}: a TCP connection to the VIP completes and echoes byte-identical, replies direct`, async () => {
      fwd.configure(c.type, c.csum);
      const rs = await t.startRealserver(0, c.args);
      try {
        const before = { enc: fwd.encapsulated, fromVip: fwd.fromVip };
        const data = randomBytes(4000);
        const r = await t.echo(t.ns.client, NET.vip, 8080, data, { timeoutMs: 8000 });
        assert.equal(r.name, 'rs0');
        assert.ok(r.echo.equals(data), 'echo byte-identical');
        assert.equal(r.local?.split(':')[0], NET.client);
        const sent = fwd.encapsulated - before.enc;
        // SYN, ACK, 3+ data segments, FIN, ACKs: all of them through the tunnel.
        assert.ok(sent >= 6, `director encapsulated ${sent} frames`);
        assert.equal(fwd.fromVip - before.fromVip, 0, 'no reply passed through the director');
        const k = await counters(rs);
        assert.ok(k.decapsulated! >= sent - 1, `decapsulated ${k.decapsulated} of ${sent}`);
        for (const bad of [
          'malformed',
          'badChecksum',
          'wrongType',
          'otherPort',
          'ecnDrop',
          'txDropped',
        ])
          assert.equal(k[bad], 0, `${bad} = ${k[bad]}`);
        assert.ok(k.decapsulatedBytes! > data.length, 'the data went through the TUN device');
        if (process.env.NETNS_DEBUG)
          process.stderr.write(`${c.name}: ${JSON.stringify(k)} partial=${fwd.partial}\n`);
      } finally {
        const code = await rs.kill('SIGTERM');
        assert.equal(code, 0, `realserver exit: ${rs.stderr}`);
        assert.match(rs.stderr, /SIGTERM: stopping/);
        assert.match(rs.stderr, /ipvs-rs0 deleted/);
      }
      assert.equal(
        t.exec(t.ns.servers[0]!, 'ip', ['link', 'show', 'ipvs-rs0'], { allowFail: true }).status !==
          0,
        true,
        'TUN device gone after stop',
      );
    });
  }

  it('frames that are not tunnelled or not for the server are left to the kernel', async () => {
    fwd.configure(ENCAP.IPIP, false);
    const rs = await t.startRealserver(0, ['--decap', 'ipip']);
    try {
      const k0 = await counters(rs);
      // Not tunnelled, for us: the kernel still answers ping and TCP on the back address.
      assert.ok(t.ping(t.ns.director, NET.serverBack(0), 3));
      const r = await t.echo(t.ns.director, NET.serverBack(0), 8080, Buffer.from('direct'));
      assert.equal(r.echo.toString(), 'direct');
      // A tunnel packet for another address on the back network: not ours.
      const inner = PacketBuilder.ipv4({ src: NET.client, dst: NET.vip })
        .tcp({ srcPort: 1234, dstPort: 8080, flags: TCP_FLAG.SYN })
        .build();
      fwd.sendRaw(
        PacketBuilder.ipv4({ src: NET.directorBack, dst: '198.51.100.99' }).payload(inner).build(),
      );
      // A GRE packet to us while only IPIP is decapsulated.
      const gre = PacketBuilder.ipv4({ src: NET.directorBack, dst: NET.serverBack(0) })
        .gre()
        .ipv4({ src: NET.client, dst: NET.vip })
        .tcp({ srcPort: 1, dstPort: 8080, flags: TCP_FLAG.SYN })
        .build();
      fwd.sendRaw(gre);
      await new Promise((r) => setTimeout(r, 200));
      const k = await counters(rs);
      assert.ok(k.notTunnel! - k0.notTunnel! >= 6, `notTunnel ${k.notTunnel! - k0.notTunnel!}`);
      assert.ok(k.notForUs! - k0.notForUs! >= 1, 'the tunnel packet for 198.51.100.99');
      assert.equal(k.wrongType! - k0.wrongType!, 1, 'the GRE packet');
      assert.equal(k.decapsulated, k0.decapsulated, 'nothing decapsulated');
    } finally {
      await rs.kill('SIGTERM');
    }
  });

  it('GRO on the interface: a warning that says how to turn it off', async (tc) => {
    if (spawnSync('ethtool', ['--version']).status !== 0)
      return tc.skip('ethtool is not installed (scripts/debian-packages.txt)');
    const ns = t.ns.servers[0]!;
    t.exec(ns, 'ethtool', ['-K', IFACE.back, 'gro', 'on']);
    try {
      const rs = await t.startRealserver(0, ['--decap', 'ipip']);
      await rs.kill('SIGTERM');
      assert.match(
        rs.stderr,
        new RegExp(
          `warning: ${IFACE.back} has generic-receive-offload on: .*ethtool -K ${IFACE.back} gro off lro off`,
        ),
      );
    } finally {
      t.exec(ns, 'ethtool', ['-K', IFACE.back, 'gro', 'off']);
    }
  });

  it('refuses to start with coded errors: unknown interface, GUE without a port', async () => {
    const rs = await startExpectFailure(t, ['--decap', 'ipip', '--iface', 'nosuch0']);
    assert.equal(rs.code, 1);
    assert.match(rs.stderr, /IPVS_ERR_IO_NO_INTERFACE: no such network interface: nosuch0/);
    const usage = await startExpectFailure(t, ['--decap', 'gue', '--iface', IFACE.back]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /needs --gue-port/);
  });

  it('as a user without privileges: IPVS_ERR_IO_NOT_ROOT naming both capabilities, no TUN left', async (tc) => {
    if (spawnSync('setpriv', ['--version']).status !== 0)
      return tc.skip('setpriv (util-linux) is not installed');
    // root's uid without the capabilities (an unprivileged uid may not be able to read the
    // checkout, wherever CI clones it): first neither, then only CAP_NET_RAW (AF_PACKET opens,
    // the TUN device does not)
    for (const drop of ['-net_raw,-net_admin', '-net_admin']) {
      const r = await startExpectFailure(t, ['--decap', 'ipip', '--iface', IFACE.back], {}, [
        'setpriv',
        `--bounding-set=${drop}`,
        `--inh-caps=${drop}`,
        '--',
      ]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /ipvs realserver: IPVS_ERR_IO_NOT_ROOT: .*needs CAP_NET_RAW .* and CAP_NET_ADMIN .*setcap cap_net_raw,cap_net_admin\+ep/,
      );
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    assert.notEqual(
      t.exec(t.ns.servers[0]!, 'ip', ['link', 'show', 'ipvs-rs0'], { allowFail: true }).status,
      0,
      'no TUN device left behind',
    );
  });

  it('reports a missing native addon as IPVS_ERR_IO_NATIVE_MISSING', async () => {
    const r = await startExpectFailure(t, ['--decap', 'ipip', '--iface', IFACE.back], {
      IPVS_NATIVE_ADDON: '/nonexistent/ipvs_native.node',
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /IPVS_ERR_IO_NATIVE_MISSING/);
    assert.ok(!existsSync('/nonexistent/ipvs_native.node'));
  });
});

/** Runs the realserver CLI in real server 0 and waits for it to exit. */
async function startExpectFailure(
  t: Topology,
  args: string[],
  env: Record<string, string> = {},
  wrapper: string[] = [],
): Promise<{ code: number | string; stderr: string }> {
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const c = t.spawn(
    t.ns.servers[0]!,
    wrapper[0] ?? 'env',
    [
      ...(wrapper.length ? [...wrapper.slice(1), 'env'] : []),
      ...envArgs,
      process.execPath,
      '--input-type=module',
      '-e',
      `import(${JSON.stringify(new URL('../../src/cli/realserver.js', import.meta.url).href)})` +
        '.then((m) => m.runRealserver(process.argv.slice(1))).then((c) => { process.exitCode = c; })',
      '--',
      ...args,
    ],
    'realserver (expected to fail)',
  );
  const code = await c.exited;
  return { code, stderr: c.stderr };
}

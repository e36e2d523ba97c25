/**
 * ipvsadm's defaults and full-replacement semantics (spec §10.4, §13 item 14), name resolution
 * (§10.5), restore (§10.7) and the save → flush → restore round trip as a property.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { restoreLines } from '../../src/cli/adm/run.js';
import { Adm } from './helpers.js';

async function withAdm(fn: (a: Adm) => Promise<void>): Promise<void> {
  const a = new Adm();
  try {
    await fn(a);
  } finally {
    a.close();
  }
}

describe('ipvs adm behaviour', () => {
  it('-p alone means 360 s; -E resets every omitted option', () =>
    withAdm(async (a) => {
      await a.run('-A -t 10.0.0.1:80 -s rr -p -M 255.255.255.0');
      assert.equal(await a.save(), '-A -t 10.0.0.1:80 -s rr -p 360 -M 255.255.255.0\n');
      assert.equal((await a.run('-E -t 10.0.0.1:80')).status, 0);
      assert.equal(await a.save(), '-A -t 10.0.0.1:80 -s wlc\n');
    }));

  it('-p takes a glued or following value and bundles work (-Ln, -At)', () =>
    withAdm(async (a) => {
      await a.run(['-At', '10.0.0.1:80', '-p600']);
      await a.run(['-At10.0.0.2:80', '--persistent=30', '--scheduler=rr']);
      assert.equal(
        await a.save(),
        '-A -t 10.0.0.1:80 -s wlc -p 600\n-A -t 10.0.0.2:80 -s rr -p 30\n',
      );
      const r = await a.run('-Ln');
      assert.equal(r.status, 0);
      assert.match(r.stdout, /TCP {2}10\.0\.0\.1:80 wlc persistent 600/);
    }));

  it("takes a short option's argument after one '=' (-t=, -p=) and weights up to 65535", () =>
    withAdm(async (a) => {
      assert.equal((await a.run(['-A', '-t=10.0.0.1:80', '-p=30', '-s=rr'])).status, 0);
      assert.equal((await a.run('-a -t 10.0.0.1:80 -r 192.168.1.1 -m -w 65535')).status, 0);
      assert.equal(
        (await a.run(['-a', '-t', '10.0.0.1:80', '-r=192.168.1.2', '-w=7000'])).status,
        0,
      );
      assert.equal((await a.run('-a -t 10.0.0.1:80 -r 192.168.1.3 -w 65536')).status, 2);
      assert.equal(
        await a.save(),
        '-A -t 10.0.0.1:80 -s rr -p 30\n' +
          '-a -t 10.0.0.1:80 -r 192.168.1.1:80 -m -w 65535\n' +
          '-a -t 10.0.0.1:80 -r 192.168.1.2:80 -g -w 7000\n',
      );
    }));

  it('accepts every -p value ipvsadm accepts, up to 31 days (the kernel does not limit it)', () =>
    withAdm(async (a) => {
      const r = await a.run('-A -t 10.0.0.1:80 -p 2678400');
      assert.deepEqual([r.status, r.stderr], [0, '']);
      assert.equal((await a.run('-E -t 10.0.0.1:80 -p 2500000')).status, 0);
      assert.equal((await a.run('-A -u 10.0.0.1:53 -p 2678400 -o')).status, 0);
      assert.equal(
        await a.save(),
        '-A -t 10.0.0.1:80 -s wlc -p 2500000\n-A -u 10.0.0.1:53 -s wlc -p 2678400 -o\n',
      );
      assert.match(
        (await a.run('-Ln')).stdout,
        /^UDP {2}10\.0\.0\.1:53 wlc persistent 2678400 ops$/m,
      );
      const over = await a.run('-A -t 10.0.0.2:80 -p 2678401');
      assert.deepEqual(
        [over.status, over.stderr],
        [2, "invalid timeout value `2678401' specified\n"],
      );
    }));

  it('prints fwmarks of 2^31 and above unsigned (the fix after 1.31), so -S | -R restores them', () =>
    withAdm(async (a) => {
      await a.run('-A -f 4294967295 -s rr');
      await a.run('-a -f 4294967295 -r 192.168.1.1 -m');
      await a.run('-A -f 2147483648 -6');
      const saved = await a.save();
      assert.equal(
        saved,
        '-A -f 2147483648 -6 -s wlc\n' +
          '-A -f 4294967295 -s rr\n' +
          '-a -f 4294967295 -r 192.168.1.1:0 -m -w 1\n',
      );
      const l = await a.run('-Ln');
      assert.match(l.stdout, /^FWM {2}4294967295 rr$/m);
      assert.match(l.stdout, /^FWM {2}2147483648 IPv6 wlc$/m);
      await a.run('-C');
      const r = await a.run('-R', saved);
      assert.deepEqual([r.status, r.stderr], [0, '']);
      assert.equal(await a.save(), saved);
    }));

  it('forces DR/TUN destination ports to the service port, keeps NAT ports, copies a missing port', () =>
    withAdm(async (a) => {
      await a.run('-A -t 10.0.0.1:80');
      await a.run('-a -t 10.0.0.1:80 -r 192.168.1.1:8080');
      await a.run('-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -i');
      await a.run('-a -t 10.0.0.1:80 -r 192.168.1.3:8080 -m');
      await a.run('-a -t 10.0.0.1:80 -r 192.168.1.4 -m -w 0');
      assert.equal(
        await a.save(),
        '-A -t 10.0.0.1:80 -s wlc\n' +
          '-a -t 10.0.0.1:80 -r 192.168.1.1:80 -g -w 1\n' +
          '-a -t 10.0.0.1:80 -r 192.168.1.2:80 -i -w 1 --tun-type ipip\n' +
          '-a -t 10.0.0.1:80 -r 192.168.1.3:8080 -m -w 1\n' +
          '-a -t 10.0.0.1:80 -r 192.168.1.4:80 -m -w 0\n',
      );
    }));

  it('-e replaces the whole destination (weight back to 1, method back to DR)', () =>
    withAdm(async (a) => {
      await a.run('-A -t 10.0.0.1:80');
      await a.run('-a -t 10.0.0.1:80 -r 192.168.1.1 -m -w 5 -x 10 -y 2');
      assert.equal((await a.run('-e -t 10.0.0.1:80 -r 192.168.1.1')).status, 0);
      assert.equal(
        await a.save(),
        '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 192.168.1.1:80 -g -w 1\n',
      );
      const t = await a.run('-L -n --thresholds');
      assert.match(t.stdout, /192\.168\.1\.1:80 {15}0 {10}0 /);
    }));

  it('accepts inet_aton short forms, host names and service names', () =>
    withAdm(async (a) => {
      assert.equal((await a.run('-A -t 10.1:http')).status, 0);
      assert.equal((await a.run('-a -t 10.0.0.1:www -r rs1.example:http-alt -m')).status, 0);
      assert.equal((await a.run('-A -u vip.example:domain')).status, 0);
      assert.equal(
        await a.save(),
        '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 192.168.1.10:8080 -m -w 1\n-A -u 10.0.0.1:53 -s wlc\n',
      );
      const named = await a.run('-S');
      assert.equal(
        named.stdout,
        '-A -t vip.example:http -s wlc\n-a -t vip.example:http -r rs1.example:http-alt -m -w 1\n-A -u vip.example:domain -s wlc\n',
      );
      const l = await a.run('-L');
      assert.match(l.stdout, /^TCP {2}vip\.example:http wlc$/m);
      assert.match(l.stdout, /^ {2}-> rs1\.example:http-alt {9}Masq {4}1 /m);
    }));

  it('zeroes, sets and lists timeouts, lists one service without header', () =>
    withAdm(async (a) => {
      await a.run('-A -t 10.0.0.1:80');
      assert.equal((await a.run('-Z')).status, 0);
      assert.equal((await a.run('-Z -t 10.0.0.1:80')).status, 0);
      assert.equal((await a.run('--set 100 0 50')).status, 0);
      assert.equal((await a.run('-L --timeout')).stdout, 'Timeout (tcp tcpfin udp): 100 120 50\n');
      const one = await a.run('-l -n -t 10.0.0.1:80');
      assert.equal(
        one.stdout,
        'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  10.0.0.1:80 wlc\n',
      );
    }));

  it('with no arguments lists everything (like -L)', () =>
    withAdm(async (a) => {
      const r = await a.run([]);
      assert.equal(r.status, 0);
      assert.match(r.stdout, /^IP Virtual Server version 1\.2\.1 \(size=4096\)\n/);
    }));

  describe('-R', () => {
    it('splits lines like config_stream_read, skipping "ipvsadm" tokens and empty lines', () => {
      assert.deepEqual(restoreLines('ipvsadm -A -t 1.2.3.4:80\n\n  \t\r\n-C\r\n-a\t-t x  -r y'), [
        ['-A', '-t', '1.2.3.4:80'],
        ['-C'],
        ['-a', '-t', 'x', '-r', 'y'],
      ]);
      // no newline at the end: one separator after the last token keeps the line, two lose it
      assert.deepEqual(restoreLines('-C\n-A -t x '), [['-C'], ['-A', '-t', 'x']]);
      assert.deepEqual(restoreLines('-C\n-A -t x\t '), [['-C']]);
      assert.deepEqual(restoreLines('-C\n-A -t x  \n'), [['-C'], ['-A', '-t', 'x']]);
    });

    it('continues after a kernel error and returns the last status', () =>
      withAdm(async (a) => {
        const r = await a.run('-R', '-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n-A -t 10.0.0.2:80\n');
        assert.deepEqual([r.status, r.stderr], [0, 'Service already exists\n']);
        assert.equal(await a.save(), '-A -t 10.0.0.1:80 -s wlc\n-A -t 10.0.0.2:80 -s wlc\n');
      }));

    it('stops at a validation error with status 2', () =>
      withAdm(async (a) => {
        const r = await a.run('-R', '-A -t 10.0.0.1:80\n-A -t 10.0.0.2:0\n-A -t 10.0.0.3:80\n');
        assert.deepEqual(
          [r.status, r.stderr],
          [2, 'Zero port specified for non-persistent service\n'],
        );
        assert.equal(await a.save(), '-A -t 10.0.0.1:80 -s wlc\n');
      }));

    it('refuses a nested -R', () =>
      withAdm(async (a) => {
        const r = await a.run('-R', '-R\n-A -t 10.0.0.3:80\n');
        assert.equal(r.status, 255);
        assert.equal(await a.save(), '');
      }));
  });

  it('property: random configurations survive -S → -C → -R → -S', async () => {
    // First octets 1..126 keep every pair of addresses less than 2^31 apart, where ipvsadm's
    // (int32)(a − b) comparator is a total order; see the next test for wider ranges.
    const ip4 = fc
      .tuple(
        fc.integer({ min: 1, max: 126 }),
        fc.nat(255),
        fc.nat(255),
        fc.integer({ min: 1, max: 254 }),
      )
      .map((t) => t.join('.'));
    const ip6 = fc
      .tuple(fc.integer({ min: 1, max: 0xfff }), fc.nat(0xffff), fc.nat(0xffff))
      .map(([a, b, c]) => `2001:db8:${a.toString(16)}::${b.toString(16)}:${c.toString(16)}`);
    const sched = fc.constantFrom(
      'rr',
      'wrr',
      'lc',
      'wlc',
      'sh',
      'mh',
      'dh',
      'sed',
      'nq',
      'fo',
      'ovf',
      'lblc',
      'lblcr',
    );
    const dest = fc.record({
      v6: fc.boolean(),
      a4: ip4,
      a6: ip6,
      port: fc.integer({ min: 0, max: 65535 }),
      fwd: fc.constantFrom('-m', '-g', '-i'),
      w: fc.integer({ min: 0, max: 65535 }),
      tun: fc.constantFrom(
        '',
        '--tun-type ipip',
        '--tun-type gue --tun-port 6080 --tun-remcsum',
        '--tun-type gre --tun-csum',
      ),
    });
    const service = fc.record({
      kind: fc.constantFrom('-t', '-u', '--sctp-service', '-f', '-f6'),
      v6: fc.boolean(),
      a4: ip4,
      a6: ip6,
      port: fc.integer({ min: 1, max: 65535 }),
      // ipvsadm prints marks with %d: those of 2^31 and above do not survive -S | -R (tested above)
      mark: fc.integer({ min: 1, max: 0x7fffffff }),
      sched,
      persist: fc.option(fc.integer({ min: 1, max: 2678400 })),
      mask: fc.option(fc.integer({ min: 1, max: 32 })),
      ops: fc.boolean(),
      flags: fc.constantFrom(
        '',
        'flag-1',
        'flag-2,flag-3',
        'x-fallback',
        'x-port',
        'x-fallback,x-port',
      ),
      dests: fc.array(dest, { maxLength: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(service, { maxLength: 5 }), async (svcs) => {
        const a = new Adm();
        try {
          for (const s of svcs) {
            const v6 = s.kind === '-f6' || (s.kind !== '-f' && s.v6);
            const id =
              s.kind === '-f'
                ? `-f ${s.mark}`
                : s.kind === '-f6'
                  ? `-f ${s.mark} -6`
                  : `${s.kind} ${v6 ? `[${s.a6}]` : s.a4}:${s.port}`;
            let line = `-A ${id} -s ${s.sched}`;
            if (s.persist !== null) {
              line += ` -p ${s.persist}`;
              if (s.mask !== null) line += v6 ? ` -M ${s.mask * 4}` : ` -M ${s.mask}.255.0.0`;
            }
            if (s.ops && (s.kind === '-u' || s.kind.startsWith('-f'))) line += ' -o';
            const fl = s.flags.replace(
              /x-/g,
              s.sched === 'sh' ? 'sh-' : s.sched === 'mh' ? 'mh-' : 'flag-1',
            );
            if (fl && !fl.includes('flag-1flag')) line += ` -b ${fl}`;
            if ((await a.run(line)).status !== 0) continue;
            for (const d of s.dests) {
              const dv6 = d.fwd === '-i' ? d.v6 : v6;
              let dl = `-a ${id} -r ${dv6 ? `[${d.a6}]` : d.a4}:${d.port} ${d.fwd} -w ${d.w}`;
              if (d.fwd === '-i' && d.tun) dl += ` ${d.tun}`;
              await a.run(dl);
            }
          }
          const saved = await a.save();
          assert.equal((await a.run('-C')).status, 0);
          assert.equal(await a.save(), '');
          const r = await a.run('-R', saved);
          assert.equal(r.status, 0, r.stderr);
          assert.equal(await a.save(), saved);
        } finally {
          a.close();
        }
      }),
      { numRuns: 150 },
    );
  });

  it('property: with addresses 2^31 apart or more the same rules come back, maybe reordered (as in ipvsadm)', async () => {
    const ip4 = fc
      .tuple(
        fc.integer({ min: 1, max: 223 }),
        fc.nat(255),
        fc.nat(255),
        fc.integer({ min: 1, max: 254 }),
      )
      .filter(([a]) => a !== 127)
      .map((t) => t.join('.'));
    await fc.assert(
      fc.asyncProperty(
        fc.array(ip4, { minLength: 1, maxLength: 6 }),
        fc.array(ip4, { maxLength: 6 }),
        async (vips, rips) => {
          const a = new Adm();
          try {
            for (const v of vips) {
              await a.run(`-A -t ${v}:80`);
              for (const r of rips) await a.run(`-a -t ${v}:80 -r ${r}:81 -m`);
            }
            const saved = await a.save();
            await a.run('-C');
            assert.equal((await a.run('-R', saved)).status, 0);
            const again = await a.save();
            assert.deepEqual(again.split('\n').sort(), saved.split('\n').sort());
          } finally {
            a.close();
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('ipvs adm --proxy-protocol (ipvs-ts extension)', () => {
  it('sets the option on -A, shows it in listings, saves it, and -E without it clears it', () =>
    withAdm(async (a) => {
      assert.equal((await a.run('-A -t 10.0.0.1:80 -s rr --proxy-protocol v2')).status, 0);
      assert.equal(await a.save(), '-A -t 10.0.0.1:80 -s rr --proxy-protocol v2\n');
      assert.match((await a.run('-Ln')).stdout, /^TCP {2}10\.0\.0\.1:80 rr proxy-protocol v2$/m);
      assert.equal((await a.run('-E -t 10.0.0.1:80 -s rr')).status, 0);
      assert.equal(await a.save(), '-A -t 10.0.0.1:80 -s rr\n');
    }));

  it('refuses other values and other commands, changing nothing', () =>
    withAdm(async (a) => {
      const bad = await a.run('-A -t 10.0.0.1:80 --proxy-protocol v3');
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /illegal proxy-protocol specified/);
      const illegal = await a.run('-a -t 10.0.0.1:80 -r 10.0.0.2 --proxy-protocol v1');
      assert.equal(illegal.status, 2);
      assert.equal(
        illegal.stderr,
        "Illegal 'proxy-protocol' option with the 'add-server' command\n",
      );
      assert.equal(await a.save(), '');
    }));
});

/**
 * Golden output of every ipvsadm listing mode and of `-S`, written from the formats of spec
 * §10.6–10.7 (printf widths, trailing spaces, large numbers, sorting), not from our own output.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import * as F from '../../src/cli/adm/format.js';
import * as O from '../../src/cli/adm/options.js';
import { conn, dest, stats, svc } from './fixtures.js';

const INFO = { version: 0x010201, connTabSize: 4096 };
const N = O.FMT_NUMERIC;
const lines = (...l: string[]) => l.map((x) => `${x}\n`).join('');

describe('ipvsadm output formats', () => {
  describe('#listAll default', () => {
    it('prints the header, title lines and Masq lines with trailing spaces (spec full example)', () => {
      const s = svc('TCP', '10.0.0.1', 80, {
        dests: [dest('192.168.1.11', 80), dest('192.168.1.10', 80)],
      });
      assert.equal(
        F.listAll(INFO, [s], N, F.NO_NAMES),
        lines(
          'IP Virtual Server version 1.2.1 (size=4096)',
          'Prot LocalAddress:Port Scheduler Flags',
          '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
          'TCP  10.0.0.1:80 wlc',
          '  -> 192.168.1.10:80              Masq    1      0          0         ',
          '  -> 192.168.1.11:80              Masq    1      0          0         ',
        ),
      );
    });

    it('prints persistence, netmask, pe, ops and scheduler flags', () => {
      const list = [
        svc('TCP', '10.0.0.1', 80, { flags: 1, timeout: 360, netmask: 0xffffff00 }),
        svc('UDP', '10.0.0.1', 53, { scheduler: 'rr', flags: 4 }),
        svc('TCP', '10.0.0.2', 80, { scheduler: 'sh', flags: 0x18 }),
        svc('TCP', '10.0.0.3', 80, { scheduler: 'mh', flags: 0x08 | 1, timeout: 60 }),
        svc('UDP', '10.0.0.4', 5060, {
          scheduler: 'rr',
          flags: 1 | 4 | 0x20,
          timeout: 30,
          pe: 'sip',
        }),
      ];
      assert.equal(
        F.listAll(INFO, list, N, F.NO_NAMES),
        lines(
          'IP Virtual Server version 1.2.1 (size=4096)',
          'Prot LocalAddress:Port Scheduler Flags',
          '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
          'TCP  10.0.0.1:80 wlc persistent 360 mask 255.255.255.0',
          'TCP  10.0.0.2:80 sh (sh-fallback,sh-port)',
          'TCP  10.0.0.3:80 mh (mh-fallback) persistent 60',
          'UDP  10.0.0.1:53 rr ops',
          'UDP  10.0.0.4:5060 rr (flag-3) persistent 30 pe sip ops',
        ),
      );
    });

    it('prints IPv6 and fwmark services, IPv6 masks and every forwarding method', () => {
      const list = [
        svc('FWM', 7, 0, {
          af: 10,
          netmask: 64,
          flags: 1,
          timeout: 300,
          dests: [dest('2001:db8::10', 0, { fwd: 3, weight: 5 })],
        }),
        svc('FWM', 1, 0, { scheduler: 'rr', dests: [dest('192.168.10.1', 0)] }),
        svc('TCP', '2001:db8::1', 443, {
          dests: [
            dest('2001:db8::20', 443, { fwd: 2, weight: 0 }),
            dest('2001:db8::3', 443, { fwd: 1, activeConns: 12, inactConns: 3 }),
          ],
        }),
        svc('SCTP', '10.0.0.9', 3868, {
          dests: [dest('10.1.1.1', 3868, { fwd: 3, weight: 65535 })],
        }),
      ];
      assert.equal(
        F.listAll(INFO, list, N, F.NO_NAMES),
        lines(
          'IP Virtual Server version 1.2.1 (size=4096)',
          'Prot LocalAddress:Port Scheduler Flags',
          '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
          'SCTP 10.0.0.9:3868 wlc',
          '  -> 10.1.1.1:3868                Route   65535  0          0         ',
          'TCP  [2001:db8::1]:443 wlc',
          '  -> [2001:db8::3]:443            Local   1      12         3         ',
          '  -> [2001:db8::20]:443           Tunnel  0      0          0         ',
          'FWM  1 rr',
          '  -> 192.168.10.1:0               Masq    1      0          0         ',
          'FWM  7 IPv6 wlc persistent 300 mask 64',
          '  -> [2001:db8::10]:0             Route   5      0          0         ',
        ),
      );
    });

    it('cuts IPv4 service names to 33 and destination names to 28 characters', () => {
      const names: F.Names = {
        host: (_af, a) =>
          a === '10.0.0.1'
            ? 'a-very-long-virtual-host-name.example.com'
            : 'a-very-long-real-server-name.example.org',
        service: () => 'http',
      };
      const s = svc('TCP', '10.0.0.1', 80, { dests: [dest('192.168.1.10', 80)] });
      assert.equal(
        F.listService(s, O.FMT_NONE, names),
        lines(
          'Prot LocalAddress:Port Scheduler Flags',
          '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
          'TCP  a-very-long-virtual-host-nam wlc',
          '  -> a-very-long-real-server-name Masq    1      0          0         ',
        ),
      );
    });
  });

  describe('#title', () => {
    it('renders the spec title lines of every mode, trailing spaces included', () => {
      assert.equal(
        F.title(O.FMT_STATS),
        'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n',
      );
      assert.equal(
        F.title(O.FMT_RATE),
        'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n',
      );
      assert.equal(
        F.title(O.FMT_THRESHOLDS),
        'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\n',
      );
      assert.equal(
        F.title(O.FMT_PERSISTENTCONN),
        'Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\n',
      );
      assert.equal(
        F.title(O.FMT_TUN_INFO),
        'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n',
      );
      assert.equal(F.title(O.FMT_RULE), '');
      // --stats wins over every other mode (first match in the order of spec §10.7)
      assert.equal(F.title(O.FMT_STATS | O.FMT_RATE | O.FMT_TUN_INFO), F.title(O.FMT_STATS));
    });
  });

  describe('#largeNum', () => {
    it('switches to K/M/G/T at 10^8, 10^9, 10^11, 10^14 with integer division', () => {
      assert.equal(F.largeNum(0, 0), '        0');
      assert.equal(F.largeNum(99_999_999, 0), ' 99999999');
      assert.equal(F.largeNum(100_000_000, 0), '  100000K');
      assert.equal(F.largeNum(999_999_999, 0), '  999999K');
      assert.equal(F.largeNum(1_000_000_000, 0), '    1000M');
      assert.equal(F.largeNum(99_999_999_999, 0), '   99999M');
      assert.equal(F.largeNum(100_000_000_000, 0), '     100G');
      assert.equal(F.largeNum(99_999_999_999_999, 0), '   99999G');
      assert.equal(F.largeNum(100_000_000_000_000, 0), '     100T');
    });

    it('prints exact values in width max(9, digits + 1) with --exact', () => {
      assert.equal(F.largeNum(5, O.FMT_EXACT), '        5');
      assert.equal(F.largeNum(12345678, O.FMT_EXACT), ' 12345678');
      assert.equal(F.largeNum(123456789, O.FMT_EXACT), ' 123456789');
      assert.equal(F.largeNum(1_234_567_890_123, O.FMT_EXACT), ' 1234567890123');
    });
  });

  describe('#listAll --stats / --rate / --exact', () => {
    const s = svc('TCP', '10.0.0.1', 80, {
      stats: stats({
        conns: 123,
        inpkts: 150_000_000,
        outpkts: 2_500_000_000,
        inbytes: 300_000_000_000,
        outbytes: 7e14,
        cps: 12,
        inpps: 3000,
        outpps: 2999,
        inbps: 123_456_789,
        outbps: 42,
      }),
      dests: [
        dest('192.168.1.10', 80, {
          stats: stats({
            conns: 5,
            inpkts: 10,
            outpkts: 20,
            inbytes: 1e9,
            outbytes: 99,
            cps: 123456789,
            inpps: 7,
            outpps: 8,
            inbps: 100_000_000,
            outbps: 1,
          }),
        }),
      ],
    });

    it('prints stats with large-number formatting', () => {
      assert.equal(
        F.listAll(INFO, [s], N | O.FMT_STATS, F.NO_NAMES),
        lines(
          'IP Virtual Server version 1.2.1 (size=4096)',
          'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes',
          '  -> RemoteAddress:Port',
          'TCP  10.0.0.1:80                       123  150000K    2500M     300G     700T',
          '  -> 192.168.1.10:80                     5       10       20    1000M       99',
        ),
      );
    });

    it('prints destination CPS/PPS with %8llu and service rates as large numbers', () => {
      assert.equal(
        F.listAll(INFO, [s], N | O.FMT_RATE, F.NO_NAMES),
        lines(
          'IP Virtual Server version 1.2.1 (size=4096)',
          'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS',
          '  -> RemoteAddress:Port',
          'TCP  10.0.0.1:80                        12     3000     2999  123456K       42',
          '  -> 192.168.1.10:80              123456789        7        8  100000K        1',
        ),
      );
    });

    it('prints exact numbers with --exact', () => {
      assert.equal(
        F.listAll(INFO, [s], N | O.FMT_STATS | O.FMT_EXACT, F.NO_NAMES),
        lines(
          'IP Virtual Server version 1.2.1 (size=4096)',
          'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes',
          '  -> RemoteAddress:Port',
          'TCP  10.0.0.1:80                       123 150000000 2500000000 300000000000 700000000000000',
          '  -> 192.168.1.10:80                     5       10       20 1000000000       99',
        ),
      );
    });
  });

  describe('#listAll --thresholds / --persistent-conn / --tun-info', () => {
    const s = svc('TCP', '10.0.0.1', 80, {
      dests: [
        dest('192.168.1.10', 80, {
          uThreshold: 100,
          lThreshold: 50,
          activeConns: 7,
          inactConns: 2,
          persistConns: 4,
          weight: 3,
          fwd: 2,
          tunType: 1,
          tunPort: 6080,
          tunFlags: 2,
        }),
        dest('192.168.1.11', 80, { fwd: 2, tunType: 2, tunFlags: 1 }),
        dest('192.168.1.12', 80, { fwd: 2 }),
        dest('192.168.1.13', 80, { fwd: 3 }),
        dest('192.168.1.14', 80, { fwd: 2, tunType: 1, tunPort: 5555, tunFlags: 0 }),
      ],
    });

    it('prints thresholds', () => {
      assert.equal(
        F.listService(s, N | O.FMT_THRESHOLDS, F.NO_NAMES)
          .split('\n')
          .slice(2, 4)
          .join('\n'),
        'TCP  10.0.0.1:80 wlc\n' +
          '  -> 192.168.1.10:80              100        50         7          2         ',
      );
    });

    it('prints persistent connection counters', () => {
      assert.equal(
        F.listService(s, N | O.FMT_PERSISTENTCONN, F.NO_NAMES).split('\n')[3],
        '  -> 192.168.1.10:80              3         4           7          2         ',
      );
    });

    it('prints tunnel info for ipip, gue and gre, n/a otherwise', () => {
      assert.equal(
        F.listService(s, N | O.FMT_TUN_INFO, F.NO_NAMES),
        lines(
          'Prot LocalAddress:Port Scheduler Flags',
          '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn',
          'TCP  10.0.0.1:80 wlc',
          '  -> 192.168.1.10:80              Tunnel  gue:6080:r+c  3      7          2         ',
          '  -> 192.168.1.11:80              Tunnel  gre:+c        1      0          0         ',
          '  -> 192.168.1.12:80              Tunnel  ipip          1      0          0         ',
          '  -> 192.168.1.13:80              Route   n/a           1      0          0         ',
          '  -> 192.168.1.14:80              Tunnel  gue:5555:-c   1      0          0         ',
        ),
      );
    });
  });

  describe('#listAll -S (save format)', () => {
    it('prints rules without header, thresholds omitted, tunnel options appended', () => {
      const list = [
        svc('TCP', '10.0.0.1', 80, {
          flags: 1,
          timeout: 360,
          dests: [dest('192.168.1.10', 80, { uThreshold: 9, lThreshold: 3 })],
        }),
        svc('FWM', 1, 0, { scheduler: 'rr', dests: [dest('192.168.10.1', 0)] }),
        svc('FWM', 2, 0, { af: 10, netmask: 128, scheduler: 'rr' }),
        svc('UDP', '10.0.0.1', 53, {
          scheduler: 'sh',
          flags: 1 | 4 | 0x10,
          timeout: 10,
          netmask: 0xffff0000,
          pe: 'sip',
        }),
        svc('SCTP', '2001:db8::1', 9, { flags: 1, timeout: 60, netmask: 48 }),
        svc('TCP', '10.0.0.2', 443, {
          dests: [
            dest('10.1.0.1', 443, { fwd: 2, tunType: 0 }),
            dest('10.1.0.2', 443, { fwd: 2, tunType: 1, tunPort: 6080, tunFlags: 1 }),
            dest('10.1.0.3', 443, { fwd: 2, tunType: 2, tunFlags: 0 }),
            dest('10.1.0.4', 443, { fwd: 1, weight: 0 }),
            dest('2001:db8::99', 443, { af: 10, fwd: 2, tunType: 1, tunPort: 7, tunFlags: 2 }),
          ],
        }),
      ];
      assert.equal(
        F.listAll(INFO, list, N | O.FMT_RULE, F.NO_NAMES),
        lines(
          '-A -t 10.0.0.1:80 -s wlc -p 360',
          '-a -t 10.0.0.1:80 -r 192.168.1.10:80 -m -w 1',
          '-A -t 10.0.0.2:443 -s wlc',
          '-a -t 10.0.0.2:443 -r 10.1.0.1:443 -i -w 1 --tun-type ipip',
          '-a -t 10.0.0.2:443 -r 10.1.0.2:443 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum',
          '-a -t 10.0.0.2:443 -r 10.1.0.3:443 -i -w 1 --tun-type gre --tun-nocsum',
          '-a -t 10.0.0.2:443 -r 10.1.0.4:443 -g -w 0',
          '-a -t 10.0.0.2:443 -r [2001:db8::99]:443 -i -w 1 --tun-type gue --tun-port 7 --tun-remcsum',
          '-A -u 10.0.0.1:53 -s sh -p 10 -M 255.255.0.0 --pe sip -o -b sh-port',
          '-A --sctp-service [2001:db8::1]:9 -s wlc -p 60 -M 48',
          '-A -f 1 -s rr',
          '-a -f 1 -r 192.168.10.1:0 -m -w 1',
          '-A -f 2 -6 -s rr',
        ),
      );
    });

    it('resolves names without -n (spec §10.5)', () => {
      const names: F.Names = {
        host: () => null,
        service: (p, proto) => (p === 80 && proto === 6 ? 'http' : null),
      };
      const s = svc('TCP', '10.0.0.1', 80, { dests: [dest('192.168.1.10', 8080)] });
      assert.equal(
        F.listAll(INFO, [s], O.FMT_RULE, names),
        lines('-A -t 10.0.0.1:http -s wlc', '-a -t 10.0.0.1:http -r 192.168.1.10:8080 -m -w 1'),
      );
    });
  });

  describe('sorting', () => {
    it('orders services by fwmark, af, protocol, address, port', () => {
      const list = [
        svc('FWM', 3, 0),
        svc('UDP', '10.0.0.1', 53),
        svc('TCP', '2001:db8::1', 80),
        svc('TCP', '10.0.0.2', 80),
        svc('TCP', '10.0.0.1', 443),
        svc('TCP', '10.0.0.1', 80),
        svc('SCTP', '10.0.0.1', 80),
        svc('FWM', 1, 0),
      ];
      const out = F.listAll(INFO, list, N, F.NO_NAMES).split('\n').slice(3, -1);
      assert.deepEqual(out, [
        'TCP  10.0.0.1:80 wlc',
        'TCP  10.0.0.1:443 wlc',
        'TCP  10.0.0.2:80 wlc',
        'UDP  10.0.0.1:53 wlc',
        'SCTP 10.0.0.1:80 wlc',
        'TCP  [2001:db8::1]:80 wlc',
        'FWM  1 wlc',
        'FWM  3 wlc',
      ]);
    });

    it('reproduces the (int32)(a − b) wrap: 200.x sorts before 10.x', () => {
      // 200.0.0.1 − 10.0.0.1 = 0xBE000000, negative as int32
      const s = svc('TCP', '1.1.1.1', 80, { dests: [dest('10.0.0.1', 80), dest('200.0.0.1', 80)] });
      const out = F.listService(s, N, F.NO_NAMES).split('\n');
      assert.equal(
        out[3],
        '  -> 200.0.0.1:80                 Masq    1      0          0         ',
      );
      assert.equal(
        out[4],
        '  -> 10.0.0.1:80                  Masq    1      0          0         ',
      );
    });

    it('keeps kernel order with --nosort', () => {
      const s = svc('TCP', '1.1.1.1', 80, { dests: [dest('10.0.0.9', 80), dest('10.0.0.1', 80)] });
      const out = F.listService(s, N | O.FMT_NOSORT, F.NO_NAMES).split('\n');
      assert.match(out[3]!, /10\.0\.0\.9/);
    });
  });

  describe('#listConns', () => {
    it('prints the title and rows with MM:SS expiry (minutes may exceed 99)', () => {
      const out = F.listConns(
        [
          conn(),
          conn({
            protocol: 17,
            stateName: 'UDP',
            expiresMs: 299_999,
            cport: 53000,
            vport: 53,
            dport: 53,
          }),
          conn({
            protocol: 0,
            stateName: 'NONE',
            caddr: '1.2.3.0',
            cport: 0,
            vaddr: '0.0.0.1',
            vport: 0,
            dport: 0,
            expiresMs: 6_000_000,
          }),
          conn({
            af: 10,
            daf: 10,
            caddr: '2001:db8::5',
            vaddr: '2001:db8::1',
            daddr: '2001:db8::10',
            expiresMs: 1500,
          }),
        ],
        N,
        F.NO_NAMES,
      );
      assert.equal(
        out,
        lines(
          'IPVS connection entries',
          'pro expire state       source             virtual            destination',
          'TCP 14:59  ESTABLISHED 1.2.3.4:5555       10.0.0.1:80        192.168.1.10:80',
          'UDP 04:59  UDP         1.2.3.4:53000      10.0.0.1:53        192.168.1.10:53',
          'IP  100:00 NONE        1.2.3.0:0          0.0.0.1:0          192.168.1.10:0',
          'TCP 00:01  ESTABLISHED [2001:db8::5]:5555 [2001:db8::1]:80   [2001:db8::10]:80',
        ),
      );
    });

    it('prints the fwmark of an IPv6 template as ipvsadm reads it from /proc (first 32 bits)', () => {
      const tmpl = conn({
        af: 10,
        daf: 10,
        protocol: 0,
        stateName: 'NONE',
        caddr: '2001:db8::99',
        cport: 0,
        vaddr: '0.0.0.7',
        vport: 0,
        daddr: '2001:db8::10',
        dport: 0,
        fwmark: 7,
        expiresMs: 100_000,
      });
      const row = 'IP  01:40  NONE        [2001:db8::99]:0   [0:7::]:0          [2001:db8::10]:0\n';
      assert.equal(F.connRow(tmpl, N, F.NO_NAMES), row);
      assert.equal(
        F.connRow({ ...tmpl, vaddr: '1.2.3.4' }, N, F.NO_NAMES).split(/ +/)[4],
        '[102:304::]:0',
      );
      // IPv4 templates keep the dotted form
      assert.match(
        F.connRow({ ...tmpl, af: 2, daf: 2, caddr: '1.2.3.4', daddr: '10.1.1.1' }, N, F.NO_NAMES),
        / 0\.0\.0\.7:0 /,
      );
    });

    it('names an unusual protocol as /proc/net/ip_vs_conn does (IP_<n>), as ipvsadm prints it', () => {
      // a synced template of protocol 50 (the backup takes templates of any protocol)
      const row = F.connRow(
        conn({ protocol: 50, stateName: 'ERR!', caddr: '1.2.3.4', cport: 0, vport: 0, dport: 0 }),
        N,
        F.NO_NAMES,
      );
      assert.match(row, /^IP_50 \d\d:\d\d +ERR! +1\.2\.3\.4:0 /);
    });

    it('prints PE name and data with --persistent-conn', () => {
      const out = F.listConns(
        [
          conn({
            protocol: 17,
            stateName: 'UDP',
            peName: 'sip',
            peData: 'call-1@host',
            vport: 5060,
            dport: 5060,
            cport: 5060,
          }),
          conn(),
        ],
        N | O.FMT_PERSISTENTCONN,
        F.NO_NAMES,
      );
      assert.equal(
        out,
        lines(
          'IPVS connection entries',
          'pro expire state       source             virtual            destination        pe name          pe_data',
          'UDP 14:59  UDP         1.2.3.4:5060       10.0.0.1:5060      192.168.1.10:5060 sip                call-1@host',
          'TCP 14:59  ESTABLISHED 1.2.3.4:5555       10.0.0.1:80        192.168.1.10:80',
        ),
      );
    });
  });

  describe('#listTimeout / #listDaemon', () => {
    it('prints timeouts', () => {
      assert.equal(
        F.listTimeout({ tcp: 900, tcpfin: 120, udp: 300 }),
        'Timeout (tcp tcpfin udp): 900 120 300\n',
      );
    });

    it('prints daemons master first with the known fields only', () => {
      assert.equal(
        F.listDaemon([
          { state: 2, mcastIfn: 'eth1', syncId: 5 },
          {
            state: 1,
            mcastIfn: 'eth0',
            syncId: 0,
            syncMaxlen: 1472,
            mcastGroup: '224.0.0.81',
            mcastPort: 8848,
            mcastTtl: 1,
          },
        ]),
        lines(
          'master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)',
          'backup sync daemon (mcast=eth1, syncid=5)',
        ),
      );
    });
  });
});

/**
 * The /proc/net/ip_vs* texts, byte for byte. The expected texts were written from the kernel's
 * seq_printf format strings (ip_vs_ctl.c, ip_vs_conn.c, ip_vs_app.c) for one configuration that
 * has every case: IPv4 and IPv6 services, a one-packet and a persistent service, fwmark
 * services of both families, a destination of each forwarding method, a mixed-family
 * destination, a template of each kind, a synced connection and SIP engine data.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  PROC_CONN_HEADER,
  PROC_CONN_SYNC_HEADER,
  procConnRow,
  procConnSyncRow,
  procIpVs,
  procIpVsApp,
  procIpVsStats,
  procIpVsStatsPercpu,
} from '../../src/metrics/proc.js';
import { CONNS, SERVICES, TOTALS } from './fixtures.js';

describe('/proc/net/ip_vs texts', () => {
  it('ip_vs: version and size, services in hex, persistent timeout in jiffies, destinations', () => {
    const expected = [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port Forward Weight ActiveConn InActConn',
      'TCP  0A000001:0050 wlc  ',
      '  -> C0A8010B:1F90      Route   5      0          0         ',
      '  -> C0A8010A:0050      Masq    1      2          3         ',
      'UDP  0A000002:0035 rr ops  persistent 360000 FFFFFF00',
      '  -> 0A010005:0035      Tunnel  2      0          0         ',
      'TCP  [2001:0db8:0000:0000:0000:0000:0000:0001]:01BB sh persistent 300000 40000000',
      '  -> [2001:0db8:0000:0000:0000:0000:0000:0010]:01BB      Local   1      0          1         ',
      'FWM  00000005 wlc persistent 60000 FFFFFFFF',
      '  -> C0A80114:0000      Route   1      0          0         ',
      'FWM  00000007 rr ops ',
      '',
    ].join('\n');
    assert.equal(procIpVs({ version: 0x010201, connTabSize: 4096 }, SERVICES), expected);
  });

  it('ip_vs with no services is the three header lines', () => {
    assert.equal(
      procIpVs({ version: 0x010201, connTabSize: 256 }, []),
      'IP Virtual Server version 1.2.1 (size=256)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n',
    );
  });

  it('ip_vs_conn: hex IPv4, full %pI6, destination by its own family, expires in seconds, PE data', () => {
    const expected = [
      'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData',
      'TCP CB007105 9C40 0A000001 0050 C0A8010A 0050 ESTABLISHED     899',
      'UDP CB007100 0000 0A000002 0035 0A010005 0035 NONE            359',
      'IP  CB007100 0000 00000005 0000 C0A80114 0000 ASSURED          59',
      'TCP 2001:0db8:0000:0000:0000:0000:0000:0099 C350 2001:0db8:0000:0000:0000:0000:0000:0001 01BB 2001:0db8:0000:0000:0000:0000:0000:0010 01BB SYN_RECV         30',
      'UDP C6336400 0000 0A000003 13C4 C0A8011E 13C4 NONE            179 sip call-1@x',
      'TCP CB007106 03E8 0A000001 0050 2001:0db8:0000:0000:0000:0000:0000:0020 0050 FIN_WAIT          2',
      'IP  2001:0db8:0000:0000:0000:0000:0000:0000 0000 0000:0007:0000:0000:0000:0000:0000:0000 0000 2001:0db8:0000:0000:0000:0000:0000:0010 0000 ASSURED           0',
      '',
    ].join('\n');
    assert.equal(PROC_CONN_HEADER + CONNS.map(procConnRow).join(''), expected);
  });

  it('ip_vs_conn_sync: the Origin column says SYNC for connections made from sync messages', () => {
    const expected = [
      'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires',
      'TCP CB007105 9C40 0A000001 0050 C0A8010A 0050 ESTABLISHED LOCAL      899',
      'UDP CB007100 0000 0A000002 0035 0A010005 0035 NONE        LOCAL      359',
      'IP  CB007100 0000 00000005 0000 C0A80114 0000 ASSURED     LOCAL       59',
      'TCP 2001:0db8:0000:0000:0000:0000:0000:0099 C350 2001:0db8:0000:0000:0000:0000:0000:0001 01BB 2001:0db8:0000:0000:0000:0000:0000:0010 01BB SYN_RECV    SYNC        30',
      'UDP C6336400 0000 0A000003 13C4 C0A8011E 13C4 NONE        LOCAL      179',
      'TCP CB007106 03E8 0A000001 0050 2001:0db8:0000:0000:0000:0000:0000:0020 0050 FIN_WAIT    SYNC         2',
      'IP  2001:0db8:0000:0000:0000:0000:0000:0000 0000 0000:0007:0000:0000:0000:0000:0000:0000 0000 2001:0db8:0000:0000:0000:0000:0000:0010 0000 ASSURED     LOCAL        0',
      '',
    ].join('\n');
    assert.equal(PROC_CONN_SYNC_HEADER + CONNS.map(procConnSyncRow).join(''), expected);
  });

  it('ip_vs_stats: zero-based totals and rates in hex', () => {
    const expected = [
      '   Total Incoming Outgoing         Incoming         Outgoing',
      '   Conns  Packets  Packets            Bytes            Bytes',
      '       A      12C       C8       1CBE991A14                0',
      '',
      ' Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s',
      '       1        F        A             1388                0',
      '',
    ].join('\n');
    assert.equal(procIpVsStats(TOTALS), expected);
  });

  it('ip_vs_stats_percpu: CPU 0 holds the running counters, ~ the zero-based totals', () => {
    const expected = [
      '       Total Incoming Outgoing         Incoming         Outgoing',
      'CPU    Conns  Packets  Packets            Bytes            Bytes',
      '  0        C      136       CD       1CBE991DEF                7',
      '  ~        A      12C       C8       1CBE991A14                0',
      '',
      '     Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s',
      '           1        F        A             1388                0',
      '',
    ].join('\n');
    assert.equal(procIpVsStatsPercpu(TOTALS), expected);
  });

  it('ip_vs_app: one row per helper port, header alone without a helper', () => {
    const expected = [
      'prot port    usecnt name',
      'TCP  2121    0      ftp              ',
      'TCP  21      2      ftp              ',
      '',
    ].join('\n');
    assert.equal(
      procIpVsApp([
        { protocol: 6, port: 2121, useCount: 0, name: 'ftp' },
        { protocol: 6, port: 21, useCount: 2, name: 'ftp' },
      ]),
      expected,
    );
    assert.equal(procIpVsApp([]), 'prot port    usecnt name\n');
  });
});

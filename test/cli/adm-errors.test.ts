/**
 * Every ipvsadm error message and exit status (spec §10.1, §10.4, §10.8; ipvsadm.c), with the
 * configuration unchanged afterwards.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { Adm } from './helpers.js';

const SETUP = [
  '-A -t 10.0.0.1:80 -s rr',
  '-a -t 10.0.0.1:80 -r 192.168.1.10:80 -m',
  '-A -u [2001:db8::1]:53',
  '-A -f 5',
];

const TRY = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n";

/** [arguments, stderr, status] */
const CASES: Array<[string, string, number]> = [
  // first option must be a command; popt errors
  ['-n -L', TRY, 255],
  ['--bogus', TRY, 255],
  ['foo', TRY, 255],
  ['-L --bogus', '--bogus: unknown option\n', 255],
  ['-Lq', '-Lq: unknown option\n', 255],
  ['-A -t', '-t: missing argument\n', 255],
  // popt: an option without an argument refuses one given with '=' (POPT_ERROR_UNWANTEDARG)
  ['-L -n=x', '-n=x: option does not take an argument\n', 255],
  ['-Ln=', '-Ln=: option does not take an argument\n', 255],
  ['-L --numeric=yes', '--numeric=yes: option does not take an argument\n', 255],
  ['-L=n', TRY, 255],
  ['--list=', TRY, 255],
  // popt drops one '=' after a short option that takes an argument
  ['-A -w=5', "You need to supply the 'service-address' option for the 'add-service' command\n", 2],
  ['-A -t==10.0.0.9:80', 'illegal virtual server address[:port] specified\n', 2],
  ['-A -t 10.0.0.9:80 -p=', "invalid timeout value `' specified\n", 2],
  ['-L -A', "invalid option `-A'\n", 2],
  ['-L foo', 'unexpected argument foo\n', 2],
  ['-L -n -n', "multiple 'numeric' options specified\n", 2],
  ['-A -t 10.0.0.9:80 -u 10.0.0.9:80', "multiple 'service-address' options specified\n", 2],
  // option × command matrix
  ['-A', "You need to supply the 'service-address' option for the 'add-service' command\n", 2],
  [
    '-a -t 10.0.0.1:80',
    "You need to supply the 'real-server' option for the 'add-server' command\n",
    2,
  ],
  ['-A -t 10.0.0.9:80 -w 3', "Illegal 'weight' option with the 'add-service' command\n", 2],
  ['-D -t 10.0.0.1:80 -s rr', "Illegal 'scheduler' option with the 'delete-service' command\n", 2],
  ['-C -n', "Illegal 'numeric' option with the 'flush' command\n", 2],
  ['-S -c', "Illegal 'connection' option with the 'save' command\n", 2],
  [
    '-L -c --timeout',
    "The option 'timeout' conflicts with the 'connection' option in the 'list' command\n",
    2,
  ],
  [
    '-L -t 10.0.0.1:80 --daemon',
    "The option 'daemon' conflicts with the 'service-address' option in the 'list' command\n",
    2,
  ],
  ['-L -c --stats', 'options conflicts in the list command\n', 2],
  ['-L --timeout --persistent-conn', 'options conflicts in the list command\n', 2],
  [
    '-d -t 10.0.0.1:80 -r 192.168.1.10 -w 2',
    "Illegal 'weight' option with the 'delete-server' command\n",
    2,
  ],
  ['--set 1 2 3 -n', "Illegal 'numeric' option with the 'set' command\n", 2],
  [
    '--stop-daemon master --mcast-interface eth0',
    "Illegal 'mcast-interface' option with the 'stop-daemon' command\n",
    2,
  ],
  // argument parsing
  ['-A -t 12345', 'illegal virtual server address[:port] specified\n', 2],
  ['-A -t 10.0.0.9:99999', 'illegal virtual server address[:port] specified\n', 2],
  ['-A -t 10.0.0.9:nosuchservice', 'illegal virtual server address[:port] specified\n', 2],
  ['-A -t [2001:db8::9]', 'illegal virtual server address[:port] specified\n', 2],
  // inet_pton refuses a leading zero in an embedded dotted quad
  ['-A -t [::ffff:192.0.2.01]:80', 'illegal virtual server address[:port] specified\n', 2],
  ['-A -t no.such.host:80', 'illegal virtual server address[:port] specified\n', 2],
  ['-a -t 10.0.0.1:80 -r 77', 'illegal real server address[:port] specified\n', 2],
  ['-A -f 0', "invalid fwmark value `0' specified\n", 2],
  ['-A -f 4294967296', "invalid fwmark value `4294967296' specified\n", 2],
  ['-A -f x1', "invalid fwmark value `x1' specified\n", 2],
  ['-A -t 10.0.0.9:80 -p 0', "invalid timeout value `0' specified\n", 2],
  ['-A -t 10.0.0.9:80 -p 2678401', "invalid timeout value `2678401' specified\n", 2],
  ['-A -t 10.0.0.9:80 -p rr', "invalid timeout value `rr' specified\n", 2],
  ['-A -t 10.0.0.9:80 -M 1.2.3.4.5', 'illegal virtual server persistent mask specified\n', 2],
  ['-A -t [2001:db8::9]:80 -M 129', 'illegal ipv6 netmask specified\n', 2],
  ['-A -t [2001:db8::9]:80 -M 0', 'illegal ipv6 netmask specified\n', 2],
  ['-A -t 10.0.0.9:80 -6', '-6 used before -f\n\n', 2],
  // ipvsadm 1.31 takes weights 0..65535 (the kernel would take more)
  ['-a -t 10.0.0.1:80 -r 192.168.1.11 -w 65536', 'illegal weight specified\n', 2],
  ['-a -t 10.0.0.1:80 -r 192.168.1.11 -w 2147483648', 'illegal weight specified\n', 2],
  ['-a -t 10.0.0.1:80 -r 192.168.1.11 -w -1', 'illegal weight specified\n', 2],
  ['-a -t 10.0.0.1:80 -r 192.168.1.11 -x 2147483648', 'illegal u_threshold specified\n', 2],
  ['-a -t 10.0.0.1:80 -r 192.168.1.11 -y abc', 'illegal l_threshold specified\n', 2],
  ['--start-daemon master --syncid 256', 'illegal syncid specified\n', 2],
  ['--start-daemon sideways', 'illegal start-daemon parameter specified\n', 2],
  ['--stop-daemon sideways', 'illegal start_daemon specified\n', 2],
  ['--start-daemon master --mcast-group 10.0.0.1', "invalid IPv4 mcast-group `10.0.0.1'\n", 2],
  [
    '--start-daemon master --mcast-group 2001:db8::1',
    "invalid IPv6 mcast-group `2001:db8::1'\n",
    2,
  ],
  ['--start-daemon master --mcast-port 0', 'illegal mcast-port specified\n', 2],
  ['--start-daemon master --mcast-ttl 256', 'illegal mcast-ttl specified\n', 2],
  ['--start-daemon master --sync-maxlen 65508', 'illegal sync-maxlen specified\n', 2],
  ['-A -t 10.0.0.9:80 -b flag-9', "invalid scheduler flag `flag-9'\n", 2],
  ['-A -t 10.0.0.9:80 -b sh-port', "incompatible scheduler flag `sh-port'\n", 2],
  ['-A -t 10.0.0.9:80 -s sh -b mh-port', "incompatible scheduler flag `mh-port'\n", 2],
  ['--set 1 2', '--set option requires 3 timeout values\n', 2],
  ['--set 1 2 x', "invalid timeout value `x' specified\n", 2],
  ['--set 1 2 2678401', "invalid timeout value `2678401' specified\n", 2],
  ['--set 1 2 3 4', 'unexpected argument 4\n', 2],
  // semantic checks before the kernel
  ['-A -t 10.0.0.9:0', 'Zero port specified for non-persistent service\n', 2],
  ['-A -t 10.0.0.9:80 -o', 'One-Packet Scheduling is only for UDP virtual services\n', 2],
  [
    '-a -t 10.0.0.1:80 -r [2001:db8::2]:80 -m',
    'Different address family is allowed only for tunneling servers\n',
    2,
  ],
  [
    '-a -t 10.0.0.1:80 -r 192.168.1.11 -m --tun-type gue',
    'Tunnel options conflict with forward method\n',
    2,
  ],
  [
    '-a -t 10.0.0.1:80 -r 192.168.1.11 -i --tun-type gue',
    "You need to supply the 'tun-port' option for the 'gue' tunnel type\n",
    2,
  ],
  [
    '-a -t 10.0.0.1:80 -r 192.168.1.11 -i --tun-port 5',
    "Illegal 'tun-port' option with the 'ipip' tunnel type\n",
    2,
  ],
  [
    '-a -t 10.0.0.1:80 -r 192.168.1.11 -i --tun-type gre --tun-remcsum',
    "Illegal 'tun-remcsum' option with the 'gre' tunnel type\n",
    2,
  ],
  [
    '-a -t 10.0.0.1:80 -r 192.168.1.11 -i --tun-type gue --tun-port 5 --tun-csum --tun-nocsum',
    "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type\n",
    2,
  ],
  ['-a -t 10.0.0.1:80 -r 192.168.1.11 -i --tun-type vxlan', 'illegal tunnel type specified\n', 2],
  [
    '-a -t 10.0.0.1:80 -r 192.168.1.11 -i --tun-type gue --tun-port 0',
    'illegal tunnel port specified\n',
    2,
  ],
  // kernel errors (§10.8): status 255
  ['-A -t 10.0.0.1:80', 'Service already exists\n', 255],
  ['-A -t 10.0.0.9:80 -s nosuch', 'Scheduler or persistence engine not found\n', 255],
  ['-A -t 10.0.0.9:80 -p --pe nosuch', 'Scheduler or persistence engine not found\n', 255],
  ['-E -t 10.0.0.9:80', 'No such service\n', 255],
  ['-E -t 10.0.0.1:80 -s nosuch', 'Scheduler or persistence engine not found\n', 255],
  ['-D -t 10.0.0.9:80', 'No such service\n', 255],
  ['-Z -t 10.0.0.9:80', 'No such service\n', 255],
  ['-a -t 10.0.0.9:80 -r 192.168.1.10', 'Service not defined\n', 255],
  ['-a -t 10.0.0.1:80 -r 192.168.1.10 -m', 'Destination already exists\n', 255],
  ['-e -t 10.0.0.9:80 -r 192.168.1.10', 'Service not defined\n', 255],
  ['-e -t 10.0.0.1:80 -r 192.168.1.99 -m', 'No such destination\n', 255],
  ['-d -t 10.0.0.9:80 -r 192.168.1.10', 'Service not defined\n', 255],
  ['-d -t 10.0.0.1:80 -r 192.168.1.99', 'No such destination\n', 255],
  [
    '-a -t 10.0.0.1:80 -r 224.0.0.1 -m',
    'Invalid operation.  Possibly wrong module version, address not unicast, ...\n',
    255,
  ],
  ['--stop-daemon backup', 'No daemon is running\n', 255],
  // listing errors: status 1
  ['-L -t 10.0.0.9:80', 'No such service\n', 1],
];

describe('ipvs adm errors', () => {
  const adm = new Adm();
  let baseline = '';
  before(async () => {
    for (const l of SETUP) assert.equal((await adm.run(l)).status, 0, l);
    baseline = await adm.save();
  });
  after(() => adm.close());

  for (const [args, stderr, status] of CASES) {
    it(`ipvsadm ${args} → ${status}: ${JSON.stringify(stderr.trim())}`, async () => {
      const r = await adm.run(args);
      assert.equal(r.stderr, stderr);
      assert.equal(r.status, status);
      assert.equal(r.stdout, '');
      assert.equal(await adm.save(), baseline, 'configuration unchanged');
    });
  }

  it('starting a daemon twice says the daemon has already run', async () => {
    const a = new Adm();
    assert.equal((await a.run('--start-daemon backup --mcast-interface lo')).status, 0);
    const r = await a.run('--start-daemon backup');
    assert.deepEqual([r.stderr, r.status], ['Daemon has already run\n', 255]);
    a.close();
  });

  it('prints usage on stdout for -h and the version for -v, status 0', async () => {
    const h = await adm.run('-h');
    assert.equal(h.status, 0);
    assert.match(
      h.stdout,
      /^ipvsadm v1\.31 2019\/12\/24 \(compiled with popt and IPVS v1\.2\.1\)\nUsage:\n  ipvsadm -A\|E virtual-service/,
    );
    // ipvsadm's SCHEDULERS list, which predates twos (spec §2.1)
    assert.match(
      h.stdout,
      /\n {2}--scheduler {4}-s scheduler {9}one of rr\|wrr\|lc\|wlc\|lblc\|lblcr\|dh\|sh\|sed\|nq\|fo\|ovf\|mh,\n/,
    );
    const v = await adm.run('--version');
    assert.deepEqual(
      [v.status, v.stdout],
      [0, 'ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n'],
    );
  });
});

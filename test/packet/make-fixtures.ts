// Regenerates test/fixtures/packet/all-formats.pcap and the tshark fields recorded beside it:
//   npx tsc -p tsconfig.json && node dist/test/packet/make-fixtures.js
// (not a test; fixtures.test.ts checks the files). lo-capture.pcap was made with
//   tcpdump -i lo -U --immediate-mode -w lo-capture.pcap 'host 127.0.0.1'
// while Node exchanged TCP and UDP on 127.0.0.1; its fields are recorded the same way.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writePcap } from '../../src/packet/index.js';
import { builtFrames, FIELDS, tshark } from './frames.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/packet');
const frames = builtFrames();
writeFileSync(
  join(dir, 'all-formats.pcap'),
  writePcap(frames.map((f) => ({ data: f.frame, timestampUs: 1_700_000_000_000_000 }))),
);
writeFileSync(
  join(dir, 'all-formats.labels.json'),
  JSON.stringify(
    frames.map((f) => f.label),
    null,
    1,
  ) + '\n',
);
for (const name of ['all-formats', 'lo-capture']) {
  const fields = tshark(join(dir, `${name}.pcap`), FIELDS);
  writeFileSync(join(dir, `${name}.tshark.json`), JSON.stringify(fields) + '\n');
}

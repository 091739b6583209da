import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PortBinding } from '../model/types.js';
import {
  commandColumn,
  ellipsis,
  humanDuration,
  json,
  keyValues,
  labelList,
  portLines,
  portsColumn,
  shortId,
  table,
  timeAgo,
} from './format.js';

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

describe('table', () => {
  it('pads like docker (width = longest + 3, at least 10), last column unpadded', () => {
    const out = table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], [
      ['0123456789ab', 'bridge', 'bridge', 'local'],
      ['ba9876543210', 'a-much-longer-name', 'bridge', 'local'],
    ]);
    assert.equal(
      out,
      [
        'NETWORK ID     NAME                 DRIVER    SCOPE',
        '0123456789ab   bridge               bridge    local',
        'ba9876543210   a-much-longer-name   bridge    local',
        '',
      ].join('\n'),
    );
  });

  it('only headers when there are no rows; no trailing spaces', () => {
    assert.equal(table(['CONTAINER ID', 'PORTS', 'NAMES'], []), 'CONTAINER ID   PORTS     NAMES\n');
    assert.equal(table(['A', 'B'], [['x', '']]), 'A         B\nx\n');
  });

  it('counts the ellipsis as one column', () => {
    const out = table(['COMMAND', 'X'], [[commandColumn(['a'.repeat(30)]), 'y']]);
    assert.equal(out, `COMMAND${' '.repeat(18)}X\n"${'a'.repeat(19)}…"   y\n`);
  });
});

describe('ids and commands', () => {
  it('short ids are 12 characters', () => {
    assert.equal(shortId('a'.repeat(64)), 'a'.repeat(12));
    assert.equal(shortId('abc'), 'abc');
  });
  it('ellipsis keeps max columns', () => {
    assert.equal(ellipsis('hello', 5), 'hello');
    assert.equal(ellipsis('hello world', 5), 'hell…');
  });
  it('COMMAND is quoted and cut at 20 columns like docker', () => {
    assert.equal(commandColumn(['sleep', '30']), '"sleep 30"');
    assert.equal(commandColumn(['sh', '-c', 'while true; do echo hi; done']), '"sh -c while true; d…"');
    assert.equal(commandColumn(['sh', '-c', 'echo "x"'], true), '"sh -c echo \\"x\\""');
  });
});

describe('times', () => {
  it("go-units' HumanDuration", () => {
    const cases: [number, string][] = [
      [0, 'Less than a second'],
      [999, 'Less than a second'],
      [1 * SEC, '1 second'],
      [5 * SEC, '5 seconds'],
      [59 * SEC, '59 seconds'],
      [60 * SEC, 'About a minute'],
      [119 * SEC, 'About a minute'],
      [2 * MIN, '2 minutes'],
      [59 * MIN, '59 minutes'],
      [60 * MIN, 'About an hour'],
      [89 * MIN, 'About an hour'],
      [90 * MIN, '2 hours'],
      [47 * HOUR, '47 hours'],
      [48 * HOUR, '2 days'],
      [13 * DAY, '13 days'],
      [14 * DAY, '2 weeks'],
      [59 * DAY, '8 weeks'],
      [60 * DAY, '2 months'],
      [729 * DAY, '24 months'],
      [730 * DAY, '2 years'],
    ];
    for (const [ms, text] of cases) assert.equal(humanDuration(ms), text, `${ms} ms`);
  });
  it('timeAgo', () => {
    const now = Date.parse('2025-01-01T12:00:00Z');
    assert.equal(timeAgo('2025-01-01T11:59:55Z', now), '5 seconds ago');
    assert.equal(timeAgo('2025-01-01T11:59:00Z', now), 'About a minute ago');
    assert.equal(timeAgo('2025-01-01T10:00:00Z', now), '2 hours ago');
    assert.equal(timeAgo('2025-01-01T12:00:30Z', now), 'Less than a second ago');
    assert.equal(timeAgo('not a time', now), '');
  });
});

describe('ports', () => {
  const p = (hostIp: string, hostPort: number, containerPort: number, protocol: 'tcp' | 'udp' = 'tcp'): PortBinding => ({
    hostIp,
    hostPort,
    containerPort,
    protocol,
  });

  it('one binding per family, docker style', () => {
    assert.equal(portsColumn([p('::', 8080, 80), p('0.0.0.0', 8080, 80)]), '0.0.0.0:8080->80/tcp, [::]:8080->80/tcp');
  });
  it('an empty host IP shows as 0.0.0.0', () => {
    assert.equal(portsColumn([p('', 32768, 80)]), '0.0.0.0:32768->80/tcp');
  });
  it('consecutive ports merge into ranges', () => {
    assert.equal(
      portsColumn([p('0.0.0.0', 8002, 82), p('0.0.0.0', 8000, 80), p('0.0.0.0', 8001, 81), p('127.0.0.1', 53, 53, 'udp')]),
      '0.0.0.0:8000-8002->80-82/tcp, 127.0.0.1:53->53/udp',
    );
  });
  it('non-consecutive host ports stay apart', () => {
    assert.equal(portsColumn([p('0.0.0.0', 9000, 80), p('0.0.0.0', 8001, 81)]), '0.0.0.0:9000->80/tcp, 0.0.0.0:8001->81/tcp');
  });
  it('no ports: empty column', () => {
    assert.equal(portsColumn([]), '');
  });
  it('`weft port` lines', () => {
    assert.deepEqual(portLines([p('::', 32768, 80), p('0.0.0.0', 5353, 53, 'udp'), p('0.0.0.0', 32768, 80)]), [
      '53/udp -> 0.0.0.0:5353',
      '80/tcp -> 0.0.0.0:32768',
      '80/tcp -> [::]:32768',
    ]);
  });
});

describe('other output', () => {
  it('json is indented with 4 spaces and ends with a newline', () => {
    assert.equal(json([{ a: 1 }]), '[\n    {\n        "a": 1\n    }\n]\n');
  });
  it('labels sorted k=v', () => {
    assert.equal(labelList({ b: '2', a: '1' }), 'a=1,b=2');
    assert.equal(labelList(undefined), '');
  });
  it('key: value lines line up', () => {
    assert.equal(keyValues([['Name', 'x'], ['Host address', 'y']], ' '), ' Name:         x\n Host address: y\n');
  });
});

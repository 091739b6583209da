/** Bad input: one clear line naming the problem, a non-zero exit, and nothing half-made. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { makeLab, type TestLab } from './helpers.js';

function post(socket: string, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('bad input', () => {
  let lab: TestLab;
  before(async () => {
    lab = await makeLab('terr');
    await lab.ok('network', 'create', '--subnet', '10.34.0.0/24', 'taken');
    await lab.ok('run', '-d', '--name', 'holder', '--network', 'taken', '--ip', '10.34.0.10', 'sleep', '600');
  });
  after(async () => lab?.down());

  const cases: [string, string[], RegExp][] = [
    ['an invalid CIDR', ['network', 'create', '--subnet', '10.0.0.300/24', 'x1'], /invalid.*10\.0\.0\.300\/24/],
    ['a subnet overlapping another network', ['network', 'create', '--subnet', '10.34.0.128/25', 'x2'], /overlaps.*taken/],
    ['a subnet overlapping a host route', ['network', 'create', '--subnet', '198.18.0.0/16', 'x3'], /overlaps.*route/],
    ['a gateway outside its subnet', ['network', 'create', '--subnet', '10.35.0.0/24', '--gateway', '10.36.0.1', 'x4'], /gateway.*10\.36\.0\.1.*outside|not in/],
    ['a duplicate network name', ['network', 'create', 'taken'], /already exists/],
    ['a predefined network name', ['network', 'create', 'host'], /predefined/],
    ['an unknown network', ['run', '-d', '--network', 'nope', 'sleep', '1'], /no such network: nope/],
    ['an unknown container', ['stop', 'ghost'], /no such container: ghost/],
    ['an address outside the subnet', ['run', '-d', '--network', 'taken', '--ip', '10.99.0.5', 'sleep', '1'], /outside/],
    ['an address already taken', ['run', '-d', '--network', 'taken', '--ip', '10.34.0.10', 'sleep', '1'], /10\.34\.0\.10.*in use.*holder/],
    ['an unknown driver option', ['network', 'create', '-o', 'bogus=1', 'x5'], /unknown --opt bogus/],
    ['removing a predefined network', ['network', 'rm', 'bridge'], /predefined/],
  ];
  for (const [what, args, re] of cases) {
    it(`answers ${what} with one clear line`, async () => {
      const before = await lab.ok('network', 'ls', '-q');
      const beforePs = await lab.ok('ps', '-aq');
      const r = await lab.weft(...args);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.equal(await lab.ok('network', 'ls', '-q'), before, 'no network left behind');
      assert.equal(await lab.ok('ps', '-aq'), beforePs, 'no container left behind');
    });
  }

  it('rejects malformed and unknown fields sent to the API', async () => {
    const unknown = await post(lab.socket, '/v1/networks', JSON.stringify({ name: 'x', colour: 'blue' }));
    assert.equal(unknown.status, 400);
    assert.match(JSON.parse(unknown.body).message, /unknown field "colour"/);
    const wrongType = await post(lab.socket, '/v1/networks', JSON.stringify({ name: 5 }));
    assert.equal(wrongType.status, 400);
    assert.match(JSON.parse(wrongType.body).message, /name/);
    const broken = await post(lab.socket, '/v1/containers', '{"cmd": [');
    assert.equal(broken.status, 400);
  });

  it('leaves no leaks after all that', async () => {
    const r = await lab.weft('system', 'check');
    assert.equal(r.code, 0, r.stdout);
  });
});

/** The CLI and API as a user meets them: listing, filters, JSON, inspect, IPv6, static addresses, events, prune. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { makeLab, sh, eventually, WEFT, type TestLab } from './helpers.js';

function get(socket: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath: socket, path }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    }).on('error', reject);
  });
}

describe('cli and api', () => {
  let lab: TestLab;
  before(async () => {
    lab = await makeLab('tcli');
  });
  after(async () => lab?.down());

  /** names from `network ls --format json`, sorted, with -f filters */
  const networkNames = async (...filters: string[]): Promise<string[]> =>
    JSON.parse(await lab.ok('network', 'ls', '--format', 'json', ...filters.flatMap((x) => ['-f', x])))
      .map((n: { name: string }) => n.name)
      .sort();

  it('serves the API on a 0600 unix socket with an OpenAPI document', async () => {
    assert.equal(statSync(lab.socket).mode & 0o777, 0o600);
    const doc = await get(lab.socket, '/openapi.json');
    assert.equal(doc.status, 200);
    const paths = Object.keys(JSON.parse(doc.body).paths);
    for (const p of ['/v1/networks', '/v1/containers', '/v1/containers/{ref}/exec']) assert.ok(paths.includes(p), p);
  });

  it('has the predefined networks, which cannot be removed', async () => {
    assert.deepEqual(await networkNames(), ['bridge', 'host', 'none']);
    assert.notEqual((await lab.weft('network', 'rm', 'none')).code, 0);
  });

  it('lists and filters networks by name, driver, label and id; inspects by id prefix', async () => {
    await lab.ok('network', 'create', '--label', 'team=red', 'red-net');
    await lab.ok('network', 'create', '--label', 'team=blue', 'blue-net');
    const q = (...f: string[]) => networkNames(...f);
    assert.deepEqual(await q('label=team=red'), ['red-net']);
    assert.deepEqual(await q('label=team'), ['blue-net', 'red-net']);
    assert.deepEqual(await q('name=blue'), ['blue-net']);
    assert.deepEqual(await q('driver=host'), ['host']);
    const id = JSON.parse(await lab.ok('network', 'inspect', 'red-net'))[0].id as string;
    assert.deepEqual(await q(`id=${id.slice(0, 8)}`), ['red-net']);
    assert.equal(JSON.parse(await lab.ok('network', 'inspect', id.slice(0, 6)))[0].name, 'red-net');
    const both = await lab.weft('network', 'inspect', 'red-net', 'missing-net');
    assert.equal(both.code, 1);
    assert.equal(JSON.parse(both.stdout).length, 1, 'prints the ones it found');
    assert.match(both.stderr, /no such network: missing-net/);
    await lab.ok('network', 'prune', '-f');
    assert.deepEqual(await networkNames(), ['bridge', 'host', 'none']);
  });

  it('gives dual-stack networks IPv6 addresses that work, and honours static addresses', async () => {
    await lab.ok('network', 'create', '--subnet', '10.41.0.0/24', '--ipv6', '--subnet', 'fd41:1::/64', 'dual');
    const net = JSON.parse(await lab.ok('network', 'inspect', 'dual'))[0];
    assert.deepEqual(net.subnets.map((s: { subnet: string }) => s.subnet).sort(), ['10.41.0.0/24', 'fd41:1::/64']);
    await lab.ok('run', '-d', '--name', 's1', '--network', 'dual', '--ip', '10.41.0.50', '--ip6', 'fd41:1::50', 'sleep', '600');
    await lab.ok('run', '-d', '--name', 's2', '--network', 'dual', 'sleep', '600');
    const s1 = await lab.inspect('s1');
    const s2 = await lab.inspect('s2');
    assert.equal(s1.networks.dual.ipv4, '10.41.0.50');
    assert.equal(s1.networks.dual.ipv6, 'fd41:1::50');
    assert.match(s2.networks.dual.ipv6!, /^fd41:1::/);
    const ok6 = await eventually(async () => (await sh('ip', ['netns', 'exec', s2.netns, 'ping', '-6', '-c', '1', '-W', '1', 'fd41:1::50'])).code === 0, 8000, 'ping6');
    assert.ok(ok6);
    const auto = JSON.parse(await lab.ok('network', 'inspect', (await lab.ok('network', 'create', '--ipv6', 'auto6')).trim()))[0];
    assert.ok(auto.subnets.some((s: { subnet: string }) => s.subnet.startsWith('fd') && s.subnet.endsWith('/64')), JSON.stringify(auto.subnets));
    await lab.ok('rm', '-f', 's1', 's2');
  });

  it('returns addresses to the pool when containers go', async () => {
    await lab.ok('network', 'create', '--subnet', '10.42.0.0/30', 'tiny');
    await lab.ok('run', '-d', '--name', 'only', '--network', 'tiny', 'sleep', '600');
    const full = await lab.weft('run', '-d', '--network', 'tiny', 'sleep', '600');
    assert.notEqual(full.code, 0);
    assert.match(full.stderr, /no free address in 10\.42\.0\.0\/30/);
    await lab.ok('rm', '-f', 'only');
    await lab.ok('run', '-d', '--name', 'next', '--network', 'tiny', 'sleep', '600');
    assert.equal((await lab.inspect('next')).networks.tiny.ipv4, '10.42.0.2');
    await lab.ok('rm', '-f', 'next');
  });

  it('streams events', async () => {
    const ev = spawn(WEFT, ['events'], { env: { ...process.env, WEFT_HOST: `unix://${lab.socket}` } });
    let out = '';
    ev.stdout.on('data', (d) => (out += d));
    try {
      await new Promise((r) => setTimeout(r, 400));
      await lab.ok('run', '-d', '--name', 'evt', 'sleep', '600');
      await lab.ok('rm', '-f', 'evt');
      await eventually(async () => /destroy/.test(out), 5000, 'destroy event');
      assert.match(out, /container create .*evt|create.*evt/);
      assert.match(out, /start/);
    } finally {
      ev.kill();
    }
  });

  it('prints version and info, and prunes stopped containers', async () => {
    assert.match(await lab.ok('version'), /\d+\.\d+\.\d+/);
    assert.match(await lab.ok('info'), /Containers/i);
    await lab.ok('run', '-d', '--name', 'done', 'true');
    await eventually(async () => (await lab.inspect('done')).state.phase === 'exited', 5000, 'exit');
    await lab.ok('system', 'prune', '-f');
    assert.equal((await lab.weft('inspect', 'done')).code, 1);
    const r = await sh(WEFT, ['-H', 'unix:///nonexistent/weft.sock', 'ps']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach the weft agent/);
  });
});

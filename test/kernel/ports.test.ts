/** Published ports in a lab: from outside, from the host (incl. 127.0.0.1), hairpin, random ports, conflicts. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeLab, httpGet, ECHO, UDP, eventually, type TestLab } from './helpers.js';

describe('published ports', () => {
  let lab: TestLab;
  before(async () => {
    lab = await makeLab('tport');
    await lab.ok('network', 'create', '--subnet', '10.32.1.0/24', 'pub');
    await lab.ok('run', '-d', '--name', 'web', '--network', 'pub', '-p', '8080:8080', '-p', '8081-8082:8080-8081', 'node', ECHO, '8080');
    await lab.ok('run', '-d', '--name', 'rnd', '--network', 'pub', '-p', '8080', 'node', ECHO, '8080');
    await lab.ok('run', '-d', '--name', 'client', '--network', 'pub', 'sleep', '3600');
  });
  after(async () => lab?.down());

  it('is reachable from outside the host at the host address', async () => {
    const body = await eventually(() => httpGet(lab.outsideNetns, `http://${lab.hostAddress}:8080/`), 10_000, 'published port');
    const web = await lab.inspect('web');
    assert.equal(JSON.parse(body).server, web.id.slice(0, 12));
    assert.equal(JSON.parse(body).client, lab.outsideAddress, 'the client address is kept (no proxy)');
  });

  it('is reachable from the host itself, including 127.0.0.1', async () => {
    assert.ok(await eventually(() => httpGet(lab.hostNetns, `http://127.0.0.1:8080/`), 10_000, 'localhost'));
    assert.ok(await httpGet(lab.hostNetns, `http://${lab.hostAddress}:8080/`));
  });

  it('is reachable from another container through the host address (hairpin), and from itself', async () => {
    const client = await lab.inspect('client');
    assert.ok(await eventually(() => httpGet(client.netns, `http://${lab.hostAddress}:8080/`), 10_000, 'hairpin'));
    const web = await lab.inspect('web');
    assert.ok(await httpGet(web.netns, `http://${lab.hostAddress}:8080/`), 'a container reaching its own published port');
  });

  it('publishes port ranges one to one', async () => {
    assert.ok(await eventually(() => httpGet(lab.outsideNetns, `http://${lab.hostAddress}:8081/`), 10_000, 'range 8081->8080'));
    assert.equal(await httpGet(lab.outsideNetns, `http://${lab.hostAddress}:8082/`), undefined, '8082->8081 has no listener');
    const ports = (await lab.ok('port', 'web')).trim().split('\n');
    assert.ok(ports.includes('8080/tcp -> 0.0.0.0:8080'), ports.join('|'));
    assert.ok(ports.includes('8081/tcp -> 0.0.0.0:8082'), ports.join('|'));
  });

  it('picks a free host port for -p CONTAINERPORT and shows it', async () => {
    const rnd = await lab.inspect('rnd');
    const hostPort = rnd.ports[0].hostPort;
    assert.ok(hostPort >= 49153 && hostPort <= 65535, `host port ${hostPort}`);
    const body = await eventually(() => httpGet(lab.outsideNetns, `http://${lab.hostAddress}:${hostPort}/`), 10_000, 'random port');
    assert.equal(JSON.parse(body).server, rnd.id.slice(0, 12));
    assert.equal((await lab.ok('port', 'rnd', '8080')).trim(), `0.0.0.0:${hostPort}`);
  });

  it('takes the first free port of a host range for one container port, as Docker does', async () => {
    await lab.ok('run', '-d', '--name', 'r1', '--network', 'pub', '-p', '8090-8091:8080', 'node', ECHO, '8080');
    await lab.ok('run', '-d', '--name', 'r2', '--network', 'pub', '-p', '8090-8091:8080', 'node', ECHO, '8080');
    assert.deepEqual([(await lab.inspect('r1')).ports[0].hostPort, (await lab.inspect('r2')).ports[0].hostPort], [8090, 8091]);
    const r2 = await lab.inspect('r2');
    const body = await eventually(() => httpGet(lab.outsideNetns, `http://${lab.hostAddress}:8091/`), 10_000, 'second port of the range');
    assert.equal(JSON.parse(body).server, r2.id.slice(0, 12));
    const full = await lab.weft('run', '-d', '--network', 'pub', '-p', '8090-8091:8080', 'sleep', '60');
    assert.notEqual(full.code, 0);
    assert.match(full.stderr, /no free host port for 8080\/tcp in 8090-8091/);
    await lab.ok('rm', '-f', 'r1', 'r2');
  });

  it('refuses a port that is already published, leaving nothing behind', async () => {
    const before = await lab.ok('ps', '-a', '-q');
    const r = await lab.weft('run', '-d', '--name', 'dup', '--network', 'pub', '-p', '8080:80', 'sleep', '60');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /8080.*already/);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    assert.equal(await lab.ok('ps', '-a', '-q'), before);
    assert.equal((await lab.weft('inspect', 'dup')).code, 1);
  });

  it('refuses a port a host process listens on', async () => {
    const srv = await lab.host(['sh', '-c', `node ${ECHO} 8090 >/dev/null 2>&1 & echo $!`]);
    const pid = Number(srv.stdout.trim());
    try {
      await eventually(() => httpGet(lab.hostNetns, 'http://127.0.0.1:8090/'), 10_000, 'host server');
      const r = await lab.weft('run', '-d', '--network', 'pub', '-p', '8090:80', 'sleep', '60');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /8090.*in use/);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  it('publishes UDP ports', async () => {
    await lab.ok('run', '-d', '--name', 'udp', '--network', 'pub', '-p', '9053:9053/udp', 'node', UDP, 'serve', '9053');
    const answer = await eventually(async () => {
      const r = await lab.outside(['node', UDP, 'send', lab.hostAddress, '9053', 'hello-udp']);
      return r.code === 0 ? r.stdout : undefined;
    }, 10_000, 'udp answer');
    assert.match(answer, new RegExp(`got hello-udp from ${lab.outsideAddress.replace(/\./g, '\\.')}`));
    assert.match(await lab.ok('port', 'udp'), /9053\/udp -> 0\.0\.0\.0:9053/);
  });

  it('binds a port to one host address only', async () => {
    await lab.ok('run', '-d', '--name', 'local', '--network', 'pub', '-p', '127.0.0.1:8096:8080', 'node', ECHO, '8080');
    assert.ok(await eventually(() => httpGet(lab.hostNetns, 'http://127.0.0.1:8096/'), 10_000, '127.0.0.1:8096'));
    assert.equal(await httpGet(lab.outsideNetns, `http://${lab.hostAddress}:8096/`), undefined, 'not published on the uplink address');
    await lab.ok('rm', '-f', 'local');
  });

  it('stops forwarding when the container is removed', async () => {
    await lab.ok('rm', '-f', 'rnd');
    await lab.ok('run', '-d', '--name', 'again', '--network', 'pub', '-p', '8095:8080', 'node', ECHO, '8080');
    assert.ok(await eventually(() => httpGet(lab.outsideNetns, `http://${lab.hostAddress}:8095/`), 10_000, 'new port'));
    await lab.ok('rm', '-f', 'again');
    assert.equal(await httpGet(lab.outsideNetns, `http://${lab.hostAddress}:8095/`), undefined);
  });
});

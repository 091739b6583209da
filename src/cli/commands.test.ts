/** The pure parts of the command groups: request building and argument splitting. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { agentOptions } from './agent.js';
import { containerCreateRequest, splitExecArgs } from './container.js';
import { agentState, envLine, labTable, splitLabExecArgs } from './lab.js';
import { pairSubnets } from './network.js';
import { eventLine, leakLine } from './system.js';
import type { LabInfo } from '../lab/types.js';

describe('containerCreateRequest', () => {
  it('only what was given', () => {
    assert.deepEqual(containerCreateRequest(['sleep', '1'], {}, {}), { cmd: ['sleep', '1'] });
  });
  it('env files first, then -e (later wins in the container)', () => {
    const files: Record<string, string> = { 'a.env': 'A=file\nB=file\n' };
    const req = containerCreateRequest(['x'], { envFile: ['a.env'], env: ['A=flag'] }, {}, (p) => files[p]);
    assert.deepEqual(req.env, ['A=file', 'B=file', 'A=flag']);
  });
  it('bad names and addresses are refused before any request', () => {
    assert.throws(() => containerCreateRequest(['x'], { name: '-bad' }, {}), /invalid --name '-bad'/);
    assert.throws(() => containerCreateRequest(['x'], { ip: '10.0.0.300' }, {}), /invalid --ip '10.0.0.300'/);
    assert.throws(() => containerCreateRequest(['x'], { ip6: '10.0.0.3' }, {}), /invalid --ip6/);
    assert.throws(() => containerCreateRequest(['x'], { dns: ['resolver'] }, {}), /invalid --dns 'resolver'/);
    assert.throws(() => containerCreateRequest(['x'], { restart: 'never' }, {}), /invalid --restart 'never'/);
    assert.throws(() => containerCreateRequest([], {}, {}), /no command given/);
  });
});

describe('argument splitting', () => {
  it('exec: a -- after the container is dropped once', () => {
    assert.deepEqual(splitExecArgs(['web', '--', '--', 'x']), { container: 'web', cmd: ['--', 'x'] });
    assert.deepEqual(splitExecArgs(['web', 'ls', '--', 'x']), { container: 'web', cmd: ['ls', '--', 'x'] });
    assert.throws(() => splitExecArgs(['web', '--']), /exec needs a container and a command/);
  });
  it('lab exec: --host and -- may follow the name', () => {
    assert.deepEqual(splitLabExecArgs(['l1', '--host', '--', 'ip', 'addr'], false), { name: 'l1', cmd: ['ip', 'addr'], host: true });
    assert.deepEqual(splitLabExecArgs(['l1', 'ping', '-c', '1', '--host'], false), { name: 'l1', cmd: ['ping', '-c', '1', '--host'], host: false });
    assert.deepEqual(splitLabExecArgs(['l1', '--', '--host'], false), { name: 'l1', cmd: ['--host'], host: false });
    assert.deepEqual(splitLabExecArgs(['l1', 'true'], true), { name: 'l1', cmd: ['true'], host: true });
    assert.throws(() => splitLabExecArgs(['l1', '--host'], false), /lab exec needs a lab and a command/);
  });
});

describe('subnet pairing', () => {
  it('ip ranges and gateways go to the n-th subnet of their family', () => {
    assert.deepEqual(pairSubnets(['fd00::/64', '10.0.0.0/24', '10.1.0.0/24'], ['10.1.0.128/25'], ['fd00::1']), [
      { subnet: 'fd00::/64', gateway: 'fd00::1' },
      { subnet: '10.0.0.0/24', ipRange: '10.1.0.128/25' },
      { subnet: '10.1.0.0/24' },
    ]);
  });
  it('more gateways than subnets of the family', () => {
    assert.throws(() => pairSubnets(['10.0.0.0/24'], [], ['10.0.0.1', '10.0.0.2']), /--gateway 10.0.0.2 has no IPv4 --subnet/);
    assert.throws(() => pairSubnets([], [], ['10.0.0.x']), /invalid --gateway '10.0.0.x'/);
  });
});

describe('agent, lab and system output', () => {
  it('agent options', () => {
    assert.deepEqual(agentOptions({ stateDir: '/s', socket: '/s.sock', store: 'sqlite' }), { stateDir: '/s', socket: '/s.sock', store: 'sqlite' });
    assert.deepEqual(agentOptions({ stateDir: '/s', socket: '/x', store: 'etcd://10.0.0.1:2379', netns: 'lab1', logLevel: 'debug' }), {
      stateDir: '/s',
      socket: '/x',
      store: 'etcd://10.0.0.1:2379',
      netns: 'lab1',
      logLevel: 'debug',
    });
    assert.throws(() => agentOptions({ stateDir: '/s', socket: '/x', store: 'mysql' }), /invalid --store 'mysql'/);
    assert.throws(() => agentOptions({ stateDir: '/s', socket: '/x', store: 'sqlite', logLevel: 'chatty' }), /invalid --log-level/);
  });

  const info: LabInfo = {
    name: 'l1',
    dir: '/tmp/weft-lab/l1',
    socket: '/tmp/weft-lab/l1/weft.sock',
    hostNetns: 'weft-lab-l1-host',
    outsideNetns: 'weft-lab-l1-out',
    hostAddress: '192.168.240.2',
    outsideAddress: '192.168.240.1',
    agentPid: 4242,
    agentRunning: true,
    store: 'sqlite',
  };
  it('lab env line and table', () => {
    assert.equal(envLine(info), 'export WEFT_HOST=unix:///tmp/weft-lab/l1/weft.sock');
    assert.equal(agentState(info), 'running (pid 4242)');
    assert.equal(agentState({ ...info, agentRunning: false }), 'stopped');
    assert.equal(
      labTable([info]),
      'NAME      AGENT                HOST ADDRESS    STORE     SOCKET\nl1        running (pid 4242)   192.168.240.2   sqlite    /tmp/weft-lab/l1/weft.sock\n',
    );
  });
  it('events and leaks', () => {
    assert.equal(
      eventLine({ revision: 1, time: 't', type: 'network', action: 'create', id: 'abc', name: 'blue' }),
      't network create abc (name=blue)',
    );
    assert.equal(leakLine({ kind: 'nft', name: 'weft-old', detail: 'table of no network' }), 'nft weft-old: table of no network');
  });
});

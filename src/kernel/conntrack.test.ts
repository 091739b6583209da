import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnCounter, parseConntrackEvent } from './conntrack.js';

const NEW = '    [NEW] tcp      6 120 SYN_SENT src=10.0.0.1 dst=10.96.0.10 sport=40000 dport=80 [UNREPLIED] src=10.1.0.2 dst=10.0.0.1 sport=8080 dport=40000';
const EST = ' [UPDATE] tcp      6 432000 ESTABLISHED src=10.0.0.1 dst=10.96.0.10 sport=40000 dport=80 src=10.1.0.2 dst=10.0.0.1 sport=8080 dport=40000 [ASSURED]';
const FIN = ' [UPDATE] tcp      6 120 FIN_WAIT src=10.0.0.1 dst=10.96.0.10 sport=40000 dport=80 src=10.1.0.2 dst=10.0.0.1 sport=8080 dport=40000 [ASSURED]';
const DESTROY = ' [DESTROY] tcp      6 src=10.0.0.1 dst=10.96.0.10 sport=40000 dport=80 src=10.1.0.2 dst=10.0.0.1 sport=8080 dport=40000 [ASSURED]';

test('parses conntrack -E lines: type, state and both tuples', () => {
  const ev = parseConntrackEvent(NEW)!;
  assert.equal(ev.type, 'NEW');
  assert.equal(ev.state, 'SYN_SENT');
  assert.deepEqual(ev.orig, { src: '10.0.0.1', dst: '10.96.0.10', sport: 40000, dport: 80 });
  assert.deepEqual(ev.reply, { src: '10.1.0.2', dst: '10.0.0.1', sport: 8080, dport: 40000 });
  assert.equal(parseConntrackEvent(DESTROY)!.state, undefined);
  assert.equal(parseConntrackEvent('conntrack v1.4.7 (conntrack-tools): 3 flow events'), undefined);
});

test('counts a DNATed flow from NEW until it starts closing, once', () => {
  const c = new ConnCounter();
  assert.equal(c.feed(parseConntrackEvent(NEW)!), '10.1.0.2:8080');
  assert.equal(c.feed(parseConntrackEvent(EST)!), undefined);
  assert.equal(c.count('10.1.0.2', 8080), 1);
  assert.equal(c.feed(parseConntrackEvent(FIN)!), '10.1.0.2:8080');
  assert.equal(c.count('10.1.0.2', 8080), 0);
  assert.equal(c.feed(parseConntrackEvent(DESTROY)!), undefined);
});

test('flows that were not DNATed are not counted', () => {
  const c = new ConnCounter();
  const direct = ' [NEW] udp      17 30 src=10.0.0.1 dst=10.1.0.2 sport=5000 dport=53 [UNREPLIED] src=10.1.0.2 dst=10.0.0.1 sport=53 dport=5000';
  assert.equal(c.feed(parseConntrackEvent(direct)!), undefined);
  assert.equal(c.count('10.1.0.2', 53), 0);
});

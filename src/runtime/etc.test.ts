import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  isLoopback,
  parseExtraHost,
  readHostResolvConf,
  removeEtcFiles,
  renderHosts,
  renderResolvConf,
  writeEtcFiles,
} from './etc.js';

describe('renderHosts', () => {
  it('writes localhost for v4 and v6, then extra hosts, then the container with all its names', () => {
    const text = renderHosts({
      hostname: 'web1',
      names: ['web', 'frontend', 'web1'],
      addresses: ['172.18.0.5/16', 'fd00:1::5'],
      extraHosts: ['db:10.1.2.3', 'v6host:fd00::9', 'br:[fd00::a]'],
    });
    const lines = text.trimEnd().split('\n').filter((l) => !l.startsWith('#'));
    assert.deepEqual(lines, [
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'fe00::0\tip6-localnet',
      'ff00::0\tip6-mcastprefix',
      'ff02::1\tip6-allnodes',
      'ff02::2\tip6-allrouters',
      '10.1.2.3\tdb',
      'fd00::9\tv6host',
      'fd00::a\tbr',
      '172.18.0.5\tweb1 web frontend',
      'fd00:1::5\tweb1 web frontend',
    ]);
    assert.ok(text.endsWith('\n'));
  });

  it('has no line for the container when it has no address', () => {
    const text = renderHosts({ hostname: 'lonely', addresses: [] });
    assert.ok(!text.includes('lonely'));
    assert.match(text, /^127\.0\.0\.1\tlocalhost$/m);
  });

  it('lists an address once', () => {
    const text = renderHosts({ hostname: 'a', addresses: ['10.0.0.1', '10.0.0.1/24'] });
    assert.equal(text.match(/^10\.0\.0\.1\t/gm)?.length, 1);
  });

  it('rejects bad names and addresses, naming the field', () => {
    assert.throws(() => renderHosts({ hostname: 'bad name', addresses: [] }), /hostname: "bad name"/);
    assert.throws(() => renderHosts({ hostname: 'ok', names: ['x#y'], addresses: [] }), /names: "x#y"/);
    assert.throws(() => renderHosts({ hostname: 'ok', addresses: ['10.0.0.300'] }), /addresses: "10\.0\.0\.300"/);
    assert.throws(() => renderHosts({ hostname: 'ok', addresses: [], extraHosts: ['nocolon'] }), /extraHosts: "nocolon" is not name:ip/);
    assert.throws(() => renderHosts({ hostname: 'ok', addresses: [], extraHosts: ['db:notanip'] }), /extraHosts: "db:notanip"/);
  });

  it('parses name:ip at the first colon', () => {
    assert.deepEqual(parseExtraHost('h:::1'), { name: 'h', ip: '::1' });
    assert.deepEqual(parseExtraHost('h:1.2.3.4'), { name: 'h', ip: '1.2.3.4' });
    assert.throws(() => parseExtraHost(':1.2.3.4'), /not name:ip/);
  });
});

describe('renderResolvConf', () => {
  const host = [
    '# a comment',
    'nameserver 127.0.0.53',
    'nameserver 10.255.255.53',
    'nameserver ::1',
    'nameserver 127.1.2.3',
    'nameserver 2001:db8::53',
    'search corp.example example.org',
    'options ndots:2 timeout:1',
    'sortlist 10.0.0.0/255.0.0.0',
  ].join('\n');

  it('keeps the host nameservers minus loopback ones, and its search/options lines', () => {
    const lines = renderResolvConf({}, host).trimEnd().split('\n').filter((l) => !l.startsWith('#'));
    assert.deepEqual(lines, [
      'nameserver 10.255.255.53',
      'nameserver 2001:db8::53',
      'search corp.example example.org',
      'options ndots:2 timeout:1',
      'sortlist 10.0.0.0/255.0.0.0',
    ]);
  });

  it('has no nameserver, and says why, when all the host ones are loopback', () => {
    const text = renderResolvConf({}, 'nameserver 127.0.0.53\nnameserver ::1\nsearch lan\n');
    assert.ok(!/^nameserver/m.test(text), text);
    assert.match(text, /^# no nameserver: the host's \(127\.0\.0\.53, ::1\) are loopback/m);
    assert.match(text, /^search lan$/m);
  });

  it('has no nameserver when the host has no resolv.conf', () => {
    const text = renderResolvConf({}, '');
    assert.ok(!/^nameserver/m.test(text));
    assert.match(text, /^# no nameserver: the host has none/m);
  });

  it('uses the given nameservers, search and options instead of the host ones', () => {
    const text = renderResolvConf({ dns: ['192.0.2.53', 'fd00::53'], search: ['svc.local'], options: ['ndots:5'] }, host);
    const lines = text.trimEnd().split('\n').filter((l) => !l.startsWith('#'));
    assert.deepEqual(lines, [
      'nameserver 192.0.2.53',
      'nameserver fd00::53',
      'search svc.local',
      'options ndots:5',
      'sortlist 10.0.0.0/255.0.0.0',
    ]);
  });

  it('keeps host search/options when only nameservers are given', () => {
    const text = renderResolvConf({ dns: ['192.0.2.53'] }, host);
    assert.match(text, /^search corp\.example example\.org$/m);
    assert.match(text, /^options ndots:2 timeout:1$/m);
    assert.ok(!text.includes('10.255.255.53'));
  });

  it('rejects bad nameservers, search domains and options', () => {
    assert.throws(() => renderResolvConf({ dns: ['dns.example'] }, ''), /dns: "dns\.example"/);
    assert.throws(() => renderResolvConf({ search: ['a b'] }, ''), /dnsSearch: "a b"/);
    assert.throws(() => renderResolvConf({ options: ['x\ny'] }, ''), /dnsOptions/);
  });

  it('knows loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) assert.ok(isLoopback(a), a);
    for (const a of ['10.0.0.1', '128.0.0.1', '::2', 'fe80::1%eth0', 'nonsense']) assert.ok(!isLoopback(a), a);
  });
});

describe('etc files on disk', () => {
  let base = '';
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'weft-t-etc-'));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('writes hosts, resolv.conf and hostname, rewriting existing files in place, leaving no temp file', async () => {
    await writeEtcFiles('ns1', { hosts: 'old hosts\n', resolvConf: 'old\n', hostname: 'old' }, base);
    const before = await stat(join(base, 'ns1', 'hosts'));
    await writeEtcFiles('ns1', { hosts: 'h\n', resolvConf: 'nameserver 192.0.2.1\n', hostname: 'box' }, base);
    assert.equal(await readFile(join(base, 'ns1', 'hosts'), 'utf8'), 'h\n');
    assert.equal(await readFile(join(base, 'ns1', 'resolv.conf'), 'utf8'), 'nameserver 192.0.2.1\n');
    assert.equal(await readFile(join(base, 'ns1', 'hostname'), 'utf8'), 'box\n');
    // rewritten in place (the same inode), so a running container's bind mount sees the change
    assert.equal((await stat(join(base, 'ns1', 'hosts'))).ino, before.ino);
    assert.deepEqual((await readdir(join(base, 'ns1'))).sort(), ['hostname', 'hosts', 'resolv.conf']);
    assert.deepEqual((await readdir(base)).sort(), ['ns1']);
  });

  it('removes the folder, and accepts a folder that is already gone', async () => {
    await writeEtcFiles('ns2', { hosts: '', resolvConf: '', hostname: 'x' }, base);
    await removeEtcFiles('ns2', base);
    assert.ok(!(await readdir(base)).includes('ns2'));
    await removeEtcFiles('ns2', base);
  });

  it('rejects netns names that would leave the base folder', async () => {
    await assert.rejects(writeEtcFiles('../evil', { hosts: '', resolvConf: '', hostname: 'x' }, base), /netns "\.\.\/evil": invalid name/);
    await assert.rejects(removeEtcFiles('..', base), /invalid name/);
    await assert.rejects(removeEtcFiles('', base), /invalid name/);
  });

  it('reads a resolv.conf file, and an empty text for a missing one', async () => {
    const p = join(base, 'resolv.conf');
    await writeFile(p, 'nameserver 192.0.2.9\n');
    assert.equal(await readHostResolvConf(p), 'nameserver 192.0.2.9\n');
    assert.equal(await readHostResolvConf(join(base, 'missing')), '');
  });
});

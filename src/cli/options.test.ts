import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  collect,
  parseAddHost,
  parseCount,
  parseEnvFile,
  parseEnvList,
  parseFilters,
  parseFormat,
  parseHost,
  parseIp,
  parseKeyValues,
  parseLogLevel,
  parseRestart,
  parseStoreSpec,
  parseDnsUpstream,
  parseTail,
} from './options.js';

describe('filters', () => {
  const allowed = ['name', 'driver', 'label', 'id'] as const;

  it('repeatable keys collect their values', () => {
    assert.deepEqual(parseFilters(['name=web', 'label=env=prod', 'name=db', 'driver=bridge'], allowed, 'network ls'), {
      name: ['web', 'db'],
      label: ['env=prod'],
      driver: ['bridge'],
    });
  });

  it('no filters is an empty object', () => {
    assert.deepEqual(parseFilters(undefined, allowed, 'network ls'), {});
  });

  it('keys are case-insensitive, values kept as given (empty too)', () => {
    assert.deepEqual(parseFilters(['NAME=Web', 'label='], allowed, 'network ls'), { name: ['Web'], label: [''] });
  });

  it('an unknown key names what the command accepts', () => {
    assert.throws(() => parseFilters(['scope=local'], allowed, 'network ls'), /invalid filter 'scope': network ls accepts name, driver, label, id/);
  });

  it('no = is an error', () => {
    assert.throws(() => parseFilters(['web'], allowed, 'network ls'), /invalid filter 'web': expected key=value/);
    assert.throws(() => parseFilters(['=web'], allowed, 'network ls'), /invalid filter '=web'/);
  });
});

describe('host', () => {
  it('unix:// URLs and bare paths', () => {
    assert.equal(parseHost('unix:///run/weft/weft.sock'), '/run/weft/weft.sock');
    assert.equal(parseHost('/tmp/x.sock'), '/tmp/x.sock');
    assert.equal(parseHost('rel/x.sock'), 'rel/x.sock');
  });
  it('other schemes and empty values are errors', () => {
    assert.throws(() => parseHost('tcp://1.2.3.4:2375'), /unsupported host 'tcp:\/\/1.2.3.4:2375'.*unix socket/);
    assert.throws(() => parseHost('unix://'), /give the socket path/);
    assert.throws(() => parseHost(' '), /empty host/);
  });
});

describe('key=value lists', () => {
  it('labels allow a bare key, options do not', () => {
    assert.deepEqual(parseKeyValues(['a=1', 'b', 'c=x=y'], '--label', true), { a: '1', b: '', c: 'x=y' });
    assert.throws(() => parseKeyValues(['mtu'], '--opt'), /invalid --opt 'mtu': expected key=value/);
    assert.throws(() => parseKeyValues(['=1'], '--label', true), /invalid --label '=1'/);
  });
  it('collect appends', () => {
    assert.deepEqual(collect('b', collect('a', undefined)), ['a', 'b']);
  });
});

describe('restart policies', () => {
  it('every form', () => {
    assert.deepEqual(parseRestart('no'), { name: 'no' });
    assert.deepEqual(parseRestart('always'), { name: 'always' });
    assert.deepEqual(parseRestart('unless-stopped'), { name: 'unless-stopped' });
    assert.deepEqual(parseRestart('on-failure'), { name: 'on-failure' });
    assert.deepEqual(parseRestart('on-failure:3'), { name: 'on-failure', maxRetries: 3 });
  });
  it('errors', () => {
    assert.throws(() => parseRestart('sometimes'), /invalid --restart 'sometimes': use no, on-failure\[:N\], always or unless-stopped/);
    assert.throws(() => parseRestart('always:3'), /only on-failure takes a retry count/);
    assert.throws(() => parseRestart('on-failure:x'), /whole number/);
    assert.throws(() => parseRestart('on-failure:'), /whole number/);
  });
});

describe('environment', () => {
  const env = { HOME: '/root', EMPTY: '' };
  it('-e KEY=VALUE as is, bare KEY from here, unset KEY dropped', () => {
    assert.deepEqual(parseEnvList(['A=1', 'HOME', 'NOPE', 'EMPTY', 'B='], env), ['A=1', 'HOME=/root', 'EMPTY=', 'B=']);
  });
  it('-e errors', () => {
    assert.throws(() => parseEnvList(['=1'], env), /invalid -e '=1'/);
    assert.throws(() => parseEnvList(['A B'], env), /no spaces/);
  });
  it('env files: comments, blanks, bare names, = in values, CRLF', () => {
    const text = '# a comment\n\nA=1\r\n  B=x=y\nHOME\nNOPE\nC= spaced \n';
    assert.deepEqual(parseEnvFile(text, 'app.env', env), ['A=1', 'B=x=y', 'HOME=/root', 'C= spaced ']);
  });
  it('env file errors name the file and line', () => {
    assert.throws(() => parseEnvFile('A=1\nBAD NAME=2\n', 'app.env', env), /--env-file app.env line 2/);
    assert.throws(() => parseEnvFile('=2\n', 'app.env', env), /app.env line 1/);
  });
});

describe('other values', () => {
  it('--add-host', () => {
    assert.equal(parseAddHost('db:10.0.0.5'), 'db:10.0.0.5');
    assert.equal(parseAddHost('db=10.0.0.5'), 'db:10.0.0.5');
    assert.equal(parseAddHost('db:fd00::5'), 'db:fd00::5');
    assert.equal(parseAddHost('db:[fd00::5]'), 'db:fd00::5');
    assert.throws(() => parseAddHost('db'), /expected name:ip/);
    assert.throws(() => parseAddHost('db:nowhere'), /'nowhere' is not an IP address/);
  });
  it('addresses by family', () => {
    assert.equal(parseIp('10.0.0.1', '--ip', 4), '10.0.0.1');
    assert.equal(parseIp('fd00::1', '--ip6', 6), 'fd00::1');
    assert.throws(() => parseIp('fd00::1', '--ip', 4), /invalid --ip 'fd00::1': expected an IPv4 address/);
    assert.throws(() => parseIp('10.0.0.1', '--ip6', 6), /expected an IPv6 address/);
    assert.throws(() => parseIp('x', '--dns'), /expected an IP address/);
  });
  it('counts and tail', () => {
    assert.equal(parseCount('5', '-t'), 5);
    assert.throws(() => parseCount('-1', '-t'), /invalid -t '-1'/);
    assert.throws(() => parseCount('1.5', '-t'), /whole number/);
    assert.equal(parseTail('all'), undefined);
    assert.equal(parseTail('20'), 20);
    assert.throws(() => parseTail('last'), /invalid --tail 'last'/);
  });
  it('--format', () => {
    assert.equal(parseFormat(undefined), 'table');
    assert.equal(parseFormat('json'), 'json');
    assert.throws(() => parseFormat('{{.Name}}'), /unsupported --format '\{\{.Name\}\}': use table or json/);
    assert.throws(() => parseFormat('table', ['json']), /use json/);
  });
  it('--store', () => {
    assert.equal(parseStoreSpec('sqlite'), 'sqlite');
    assert.equal(parseStoreSpec('etcd://10.0.0.1:2379'), 'etcd://10.0.0.1:2379');
    assert.equal(parseStoreSpec('etcd://etcd.lab:2379'), 'etcd://etcd.lab:2379');
    assert.equal(parseStoreSpec('etcd://[fd00::1]:2379'), 'etcd://[fd00::1]:2379');
    assert.throws(() => parseStoreSpec('etcd://host'), /use sqlite or etcd:\/\/HOST:PORT/);
    assert.throws(() => parseStoreSpec('etcd://host:0'), /invalid --store/);
    assert.throws(() => parseStoreSpec('postgres'), /invalid --store 'postgres'/);
  });
  it('--dns-upstream', () => {
    assert.deepEqual(parseDnsUpstream('198.18.1.1'), { host: '198.18.1.1', port: 53 });
    assert.deepEqual(parseDnsUpstream('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
    assert.deepEqual(parseDnsUpstream('[fd00::1]:53'), { host: 'fd00::1', port: 53 });
    assert.deepEqual(parseDnsUpstream('fd00::1'), { host: 'fd00::1', port: 53 });
    assert.throws(() => parseDnsUpstream('dns.example'), /invalid --dns-upstream 'dns.example'/);
    assert.throws(() => parseDnsUpstream('1.2.3.4:0'), /invalid --dns-upstream/);
    assert.throws(() => parseDnsUpstream('1.2.3.999'), /invalid --dns-upstream/);
  });
  it('--log-level', () => {
    assert.equal(parseLogLevel('debug'), 'debug');
    assert.throws(() => parseLogLevel('loud'), /invalid --log-level 'loud'/);
  });
});

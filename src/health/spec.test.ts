import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HealthSpecError, describeHealthTest, healthSpec, normalizeHealthTest } from './spec.js';

describe('normalizeHealthTest', () => {
  it('reads the Compose forms', () => {
    assert.deepEqual(normalizeHealthTest('curl -f http://localhost/'), ['CMD-SHELL', 'curl -f http://localhost/']);
    assert.deepEqual(normalizeHealthTest(['CMD', 'pg_isready', '-U', 'app']), ['CMD', 'pg_isready', '-U', 'app']);
    assert.deepEqual(normalizeHealthTest(['CMD-SHELL', 'curl -f localhost || exit 1']), ['CMD-SHELL', 'curl -f localhost || exit 1']);
    assert.deepEqual(normalizeHealthTest(['CMD-SHELL', 'curl', '-f', 'localhost']), ['CMD-SHELL', 'curl -f localhost']);
    assert.deepEqual(normalizeHealthTest(['NONE']), ['NONE']);
  });

  it('reads weft probes, defaulting the HTTP path to /', () => {
    assert.deepEqual(normalizeHealthTest(['TCP', '5432']), ['TCP', '5432']);
    assert.deepEqual(normalizeHealthTest(['HTTP', '8080']), ['HTTP', '8080', '/']);
    assert.deepEqual(normalizeHealthTest(['HTTP', '8080', '/healthz?full=1']), ['HTTP', '8080', '/healthz?full=1']);
    assert.deepEqual(normalizeHealthTest(['TCP', 80 as unknown as string]), ['TCP', '80'], 'a YAML number port');
  });

  it('rejects other forms with the field named', () => {
    const bad: [string | string[], RegExp][] = [
      ['', /^healthcheck\.test: the command is empty$/],
      [[], /healthcheck\.test: give a command string or a list/],
      [['curl', '-f', 'x'], /a test list starts with "CMD", "CMD-SHELL", "TCP", "HTTP" or "NONE", not "curl"$/],
      [['cmd', 'true'], /not "cmd"; write it in capitals: "CMD"/],
      [['CMD'], /CMD needs a program/],
      [['CMD', ''], /CMD needs a program/],
      [['CMD-SHELL', '  '], /CMD-SHELL needs a command/],
      [['TCP'], /TCP takes one port/],
      [['TCP', '80', '81'], /TCP takes one port/],
      [['TCP', '0'], /"0" is not a port; use 1-65535/],
      [['TCP', '65536'], /"65536" is not a port/],
      [['TCP', 'http'], /"http" is not a port/],
      [['HTTP', '-1'], /"-1" is not a port/],
      [['HTTP', '80', 'healthz'], /the HTTP path "healthz" must start with "\/"/],
      [['HTTP', '80', '/a b'], /must start with "\/" and hold no spaces/],
      [['HTTP', '80', '/', 'x'], /HTTP takes a port and an optional path/],
    ];
    for (const [test, message] of bad) {
      assert.throws(
        () => normalizeHealthTest(test),
        (e: unknown) => e instanceof HealthSpecError && e.field === 'test' && message.test(e.message),
        JSON.stringify(test),
      );
    }
  });
});

describe('healthSpec', () => {
  it("fills in Docker's defaults", () => {
    assert.deepEqual(healthSpec({ test: ['TCP', '80'] }), {
      test: ['TCP', '80'],
      intervalMs: 30_000,
      timeoutMs: 30_000,
      retries: 3,
      startPeriodMs: 0,
      startIntervalMs: 5_000,
    });
  });

  it('reads Go duration strings and millisecond numbers', () => {
    const spec = healthSpec({ test: 'true', interval: '1m30s', timeout: '1.5s', retries: 5, start_period: '500ms', start_interval: 2000 });
    assert.deepEqual(spec, { test: ['CMD-SHELL', 'true'], intervalMs: 90_000, timeoutMs: 1500, retries: 5, startPeriodMs: 500, startIntervalMs: 2000 });
    assert.equal(healthSpec({ test: 'true', interval: '2s' })?.intervalMs, 2000);
  });

  it('reads zero as the default, as Docker does', () => {
    const spec = healthSpec({ test: 'true', interval: '0s', timeout: 0, retries: 0, start_period: '0', start_interval: '0s' });
    assert.deepEqual(spec, { test: ['CMD-SHELL', 'true'], intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0, startIntervalMs: 5000 });
    assert.equal(healthSpec({ test: 'true', retries: 1 })?.retries, 1);
  });

  it('is undefined when disabled', () => {
    assert.equal(healthSpec({ test: ['CMD', 'true'], disable: true }), undefined);
    assert.equal(healthSpec({ test: ['NONE'] }), undefined);
    assert.ok(healthSpec({ test: ['CMD', 'true'], disable: false }));
  });

  it('rejects bad numbers, naming the field', () => {
    const bad: [Parameters<typeof healthSpec>[0], string, RegExp][] = [
      [{ test: 'x', interval: '10' }, 'interval', /^healthcheck\.interval: "10" is not a duration; use a number with a unit/],
      [{ test: 'x', timeout: 'soon' }, 'timeout', /^healthcheck\.timeout: "soon" is not a duration/],
      [{ test: 'x', timeout: -5 }, 'timeout', /-5 is not a duration; use 0 or more milliseconds/],
      [{ test: 'x', interval: '-1s' }, 'interval', /not a duration/],
      [{ test: 'x', interval: '300us' }, 'interval', /"300us" is under 1ms/],
      [{ test: 'x', start_interval: 0.5 }, 'start_interval', /0.5 is under 1ms/],
      [{ test: 'x', start_period: Number.NaN }, 'start_period', /NaN is not a duration/],
      [{ test: 'x', retries: -1 }, 'retries', /^healthcheck\.retries: -1 is not a count/],
      [{ test: 'x', retries: 1.5 }, 'retries', /1.5 is not a count/],
    ];
    for (const [input, field, message] of bad) {
      assert.throws(
        () => healthSpec(input),
        (e: unknown) => e instanceof HealthSpecError && e.field === field && message.test(e.message),
        JSON.stringify(input),
      );
    }
  });
});

describe('describeHealthTest', () => {
  it('is short text for ps and inspect', () => {
    assert.equal(describeHealthTest({ test: ['TCP', '80'] }), 'tcp :80');
    assert.equal(describeHealthTest({ test: ['HTTP', '8080', '/healthz'] }), 'http :8080/healthz');
    assert.equal(describeHealthTest({ test: ['CMD', 'pg_isready', '-U', 'app'] }), 'cmd pg_isready -U app');
    assert.equal(describeHealthTest({ test: ['CMD', 'sh', '-c', "echo 'hi'"] }), `cmd sh -c 'echo '\\''hi'\\'''`);
    assert.equal(describeHealthTest({ test: ['CMD-SHELL', 'curl -f localhost'] }), 'shell curl -f localhost');
    assert.equal(describeHealthTest({ test: ['NONE'] }), 'none');
    const long = describeHealthTest({ test: ['CMD', 'curl', '-f', 'http://localhost:8080/a/very/long/health/path'] });
    assert.equal(long, 'cmd curl -f http://localhost:8080/a/ver…');
    assert.equal(long.length, 40);
  });
});

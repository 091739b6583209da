import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InterpolationError, interpolate, parseDotenv } from './interpolate.js';

const vars: Record<string, string> = { SET: 'value', EMPTY: '', PORT: '8080' };
const lookup = (n: string): string | undefined => vars[n];
const run = (t: string): string => interpolate(t, lookup);

function fails(text: string, message: string | RegExp): void {
  assert.throws(
    () => run(text),
    (e: unknown) => {
      assert.ok(e instanceof InterpolationError, String(e));
      if (typeof message === 'string') assert.equal(e.message, message);
      else assert.match(e.message, message);
      return true;
    },
  );
}

describe('interpolate', () => {
  it('replaces $VAR and ${VAR}', () => {
    assert.equal(run('port $PORT and ${PORT}!'), 'port 8080 and 8080!');
    assert.equal(run('$SET-x ${SET}x'), 'value-x valuex');
    assert.equal(run('no dollars'), 'no dollars');
  });

  it('gives "" for an unset variable and reports it', () => {
    const unset: string[] = [];
    assert.equal(interpolate('a${NOPE}b$NOPE2', lookup, (n) => unset.push(n)), 'ab');
    assert.deepEqual(unset, ['NOPE', 'NOPE2']);
  });

  it('$$ is a literal dollar', () => {
    assert.equal(run('cost $$5 $${SET}'), 'cost $5 ${SET}');
  });

  it(':- takes the default when unset or empty, - only when unset', () => {
    assert.equal(run('${NOPE:-d}|${EMPTY:-d}|${SET:-d}'), 'd|d|value');
    assert.equal(run('${NOPE-d}|${EMPTY-d}|${SET-d}'), 'd||value');
    assert.equal(run('${NOPE:-}'), '');
  });

  it(':? errors when unset or empty, ? only when unset', () => {
    assert.equal(run('${SET:?x}'), 'value');
    assert.equal(run('${EMPTY?x}'), '');
    fails('${EMPTY:?give EMPTY}', 'required variable EMPTY is missing a value: give EMPTY');
    fails('${NOPE?need it}', 'required variable NOPE is missing a value: need it');
    fails('${NOPE:?}', 'required variable NOPE is missing a value');
  });

  it(':+ replaces when set and not empty, + when set', () => {
    assert.equal(run('${SET:+alt}|${EMPTY:+alt}|${NOPE:+alt}'), 'alt||');
    assert.equal(run('${SET+alt}|${EMPTY+alt}|${NOPE+alt}'), 'alt|alt|');
  });

  it('nests, and evaluates defaults only when used', () => {
    assert.equal(run('${NOPE:-${PORT}}'), '8080');
    assert.equal(run('${NOPE:-${ALSO:-deep $SET}}'), 'deep value');
    assert.equal(run('${SET:-${NOPE:?not evaluated}}'), 'value');
    assert.equal(run('${SET:+on ${PORT}}'), 'on 8080');
  });

  it('rejects bad syntax with the text in the message', () => {
    fails('echo $5', 'invalid interpolation in "echo $5": "$5" is not a variable; write $$ for a literal $');
    fails('end $', /a "\$" at the end is not a variable/);
    fails('${SET', /missing "}" to close "\$\{SET"/);
    fails('${SET:-abc', /missing "}" to close "\$\{"/);
    fails('${}', /does not start with a variable name/);
    fails('${9X}', /does not start with a variable name/);
    fails('${SET:x}', /unexpected ":" in "\$\{SET"/);
    fails('${SET/a/b}', /unexpected "\/"/);
  });
});

describe('parseDotenv', () => {
  it('reads plain, quoted, exported and bare entries', () => {
    const text = [
      '# comment',
      '',
      'A=1',
      'export B = two words  # trailing comment',
      'C="line\\nnext \\"q\\""',
      "D='literal $A \\n'",
      'E=${A}-$OUTER',
      'F',
      'G',
      'H="multi',
      'line"',
      'I=a#b',
    ].join('\n');
    const { entries, problems } = parseDotenv(text, (n) => ({ OUTER: 'out', F: 'from-env' })[n]);
    assert.deepEqual(problems, []);
    assert.deepEqual(
      entries.map((e) => [e.name, e.value, e.line]),
      [
        ['A', '1', 3],
        ['B', 'two words', 4],
        ['C', 'line\nnext "q"', 5],
        ['D', 'literal $A \\n', 6],
        ['E', '1-out', 7],
        ['F', 'from-env', 8],
        ['G', undefined, 9],
        ['H', 'multi\nline', 10],
        ['I', 'a#b', 12],
      ],
    );
  });

  it('lets the lookup win over earlier entries of the file', () => {
    const { entries } = parseDotenv('A=file\nB=$A', (n) => (n === 'A' ? 'env' : undefined));
    assert.equal(entries[1].value, 'env');
  });

  it('reports bad lines with their numbers', () => {
    const { problems } = parseDotenv('OK=1\n1BAD=x\nQ="open\nR=${X', () => undefined);
    assert.deepEqual(problems, [
      { line: 2, message: '"1BAD=x" is not NAME=VALUE (a name is letters, digits, _ . -, not starting with a digit)' },
      { line: 3, message: 'Q: missing the closing " of the value' },
    ]);
    const bad = parseDotenv('R=${X', () => undefined).problems;
    assert.equal(bad.length, 1);
    assert.match(bad[0].message, /^R: invalid interpolation/);
  });
});

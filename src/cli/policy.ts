/**
 * `weft policy ...` (apply/delete -f as kubectl does, ls, inspect, rm, check, matrix),
 * `weft project ...` (ls, inspect, label) and `weft label CONTAINER k=v k-`.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { LabelChange, PolicyCheckResult, PolicyMatrix, PolicyView, ProjectView } from '../api/schemas.js';
import type { LabelSelector } from '../policy/types.js';
import { parsePolicies, policyObject, PolicyParseError, type PolicyDocument } from '../policy/parse.js';
import { ApiError, seg } from './client.js';
import type { Ctx } from './context.js';
import { CliError, ExitCode } from './errors.js';
import { json, table, timeAgo } from './format.js';
import { collect, parseFormat } from './options.js';

const KIND = 'networkpolicy.networking.k8s.io';

function readDocs(files: string[], ctx: Ctx): PolicyDocument[] {
  if (!files.length) throw new CliError('give the policies with -f FILE (YAML, one or many documents; - reads stdin)');
  const issues: string[] = [];
  const docs: PolicyDocument[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f === '-' ? '/dev/stdin' : f, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read ${f}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    try {
      docs.push(...parsePolicies(text, f === '-' ? 'stdin' : f));
    } catch (e) {
      if (e instanceof PolicyParseError) issues.push(...e.issues);
      else throw e;
    }
  }
  if (issues.length) {
    for (const i of issues.slice(0, -1)) ctx.error(i);
    throw new CliError(issues[issues.length - 1]!);
  }
  return docs;
}

export function selectorText(s: LabelSelector): string {
  const parts = [
    ...Object.entries(s.matchLabels).map(([k, v]) => `${k}=${v}`),
    ...s.matchExpressions.map((e) =>
      e.operator === 'Exists' ? e.key : e.operator === 'DoesNotExist' ? `!${e.key}` : `${e.key} ${e.operator === 'In' ? 'in' : 'notin'} (${e.values.join(',')})`,
    ),
  ];
  return parts.length ? parts.join(',') : '<none>';
}

export function policyTable(list: PolicyView[], now: number): string {
  const rows = list.map((p) => [
    p.project,
    p.name,
    selectorText(p.spec.podSelector),
    p.spec.policyTypes.join(','),
    String(p.selected.length),
    String(p.drops.packets),
    timeAgo(p.created, now),
  ]);
  return table(['PROJECT', 'NAME', 'POD-SELECTOR', 'TYPES', 'SELECTED', 'DROPPED', 'AGE'], rows);
}

/** `k=v` sets, `k-` removes (kubectl label). */
export function parseLabelArgs(args: string[]): LabelChange {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const a of args) {
    if (a.endsWith('-') && !a.includes('=')) remove.push(a.slice(0, -1));
    else {
      const i = a.indexOf('=');
      if (i <= 0) throw new CliError(`invalid label '${a}': use KEY=VALUE to set, KEY- to remove`);
      set[a.slice(0, i)] = a.slice(i + 1);
    }
  }
  if (!remove.length && !Object.keys(set).length) throw new CliError('give labels: KEY=VALUE to set, KEY- to remove');
  return { set, remove };
}

/** NAME or PROJECT/NAME; the project defaults to -n, else "default". */
function policyRef(ref: string, project?: string): [string, string] {
  const i = ref.indexOf('/');
  return i > 0 ? [ref.slice(0, i), ref.slice(i + 1)] : [project ?? 'default', ref];
}

/** TO[:PORT[/PROTO]] — an IPv6 address goes in brackets: [fd00::2]:80/tcp */
export function parseTarget(spec: string): { to: string; port?: number; protocol?: 'tcp' | 'udp' | 'sctp' | 'icmp' } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?(?:\/(tcp|udp|sctp|icmp))?$/.exec(spec);
  if (!m) throw new CliError(`invalid target '${spec}': use CONTAINER[:PORT[/tcp|udp|sctp]] or ADDRESS[:PORT[/PROTO]] ([v6]:port)`);
  const to = m[1]!.replace(/^\[|\]$/g, '');
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && !(port >= 1 && port <= 65535)) throw new CliError(`invalid port in '${spec}': 1-65535`);
  return { to, port, protocol: m[3] as 'tcp' | 'udp' | 'sctp' | 'icmp' | undefined };
}

const MARK: Record<string, string> = { allow: 'ok', deny: 'DENY', 'no-path': '-', '': '.' };

export function matrixText(m: PolicyMatrix): string {
  const names = m.containers.map((c) => (c.project && c.project !== 'default' ? `${c.project}/${c.container}` : (c.container ?? c.ip)));
  const out: string[] = [];
  m.ports.forEach((port, k) => {
    out.push(`${port} (rows: from, columns: to)`);
    const rows = names.map((from, i) => [
      from,
      ...names.map((_, j) => {
        const model = m.cells[i]![j]![k]!;
        const kernel = m.probed?.[i]?.[j]?.[k];
        const bad = m.disagreements?.some((x) => x.from === m.containers[i]!.container && x.to === m.containers[j]!.container && x.port === port);
        return `${MARK[model]}${bad ? `!(kernel: ${kernel || 'error'})` : ''}`;
      }),
    ]);
    out.push(table(['', ...names.map((_, j) => String(j + 1))], rows.map((r, i) => [`${i + 1} ${r[0]}`, ...r.slice(1)])).trimEnd());
    out.push('');
  });
  out.push('ok: allowed  DENY: denied by policy  -: no shared network  .: itself');
  if (m.disagreements) {
    out.push(m.disagreements.length ? `${m.disagreements.length} cell(s) where the kernel disagrees with the model:` : 'probed: the kernel agrees with the model in every cell');
    for (const d of m.disagreements) out.push(`  ${d.from} -> ${d.to} ${d.port}: model ${d.model}, kernel ${d.kernel}`);
  }
  return out.join('\n') + '\n';
}

export function checkText(r: PolicyCheckResult): string {
  const end = (p: PolicyCheckResult['from']) => (p.container ? `${p.container} (${p.ip})` : p.ip);
  const what = r.port ? `${r.port}/${r.protocol}` : r.protocol;
  const lines = [`${r.allowed ? 'allowed' : 'denied'}: ${end(r.from)} -> ${end(r.to)} ${what}`, ...r.reasons.map((x) => `  ${x}`)];
  if (r.noPath) lines.push(`  note: ${r.noPath}`);
  return lines.join('\n') + '\n';
}

export function registerPolicy(program: Command, ctx: Ctx): void {
  const pol = program.command('policy').description('Network policies (Kubernetes NetworkPolicy): apply, inspect, explain');

  pol
    .command('apply')
    .description('Create or update policies from NetworkPolicy YAML, as kubectl apply -f')
    .option('-f, --filename <file>', 'a YAML file (repeatable; - reads stdin)', collect)
    .option('-n, --namespace <project>', 'the project of policies that name no metadata.namespace (default: default)')
    .action(async (opts: { filename?: string[]; namespace?: string }) => {
      for (const d of readDocs(opts.filename ?? [], ctx)) {
        const r = await ctx.client().post<{ result: string }>('/v1/policies', { object: policyObject(d), project: opts.namespace });
        ctx.line(`${KIND}/${d.name} ${r.result}`);
      }
    });

  pol
    .command('delete')
    .description('Delete the policies a YAML file describes, as kubectl delete -f')
    .option('-f, --filename <file>', 'a YAML file (repeatable; - reads stdin)', collect)
    .option('-n, --namespace <project>', 'the project of policies that name no metadata.namespace')
    .option('--ignore-not-found', 'a policy that does not exist is not an error')
    .action(async (opts: { filename?: string[]; namespace?: string; ignoreNotFound?: boolean }) => {
      let missing = 0;
      for (const d of readDocs(opts.filename ?? [], ctx)) {
        const project = d.namespace ?? opts.namespace ?? 'default';
        try {
          await ctx.client().delete(`/v1/policies/${seg(project)}/${seg(d.name)}`);
          ctx.line(`${KIND} "${d.name}" deleted`);
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 404)) throw e;
          if (!opts.ignoreNotFound) {
            ctx.error(`${KIND.replace('networkpolicy', 'networkpolicies')} "${d.name}" not found in project ${project}`);
            missing++;
          }
        }
      }
      if (missing) throw new ExitCode(1);
    });

  pol
    .command('ls')
    .alias('list')
    .description('List policies')
    .option('-n, --namespace <project>', 'only this project')
    .option('--format <format>', 'table or json', 'table')
    .action(async (opts: { namespace?: string; format: string }) => {
      const list = await ctx.client().get<PolicyView[]>('/v1/policies', { project: opts.namespace });
      if (parseFormat(opts.format) === 'json') ctx.out(json(list));
      else ctx.out(policyTable(list, Date.now()));
    });

  pol
    .command('inspect')
    .description('Show policies in detail (JSON): the spec, the containers selected, the drops')
    .argument('<policy...>', 'NAME or PROJECT/NAME')
    .option('-n, --namespace <project>', 'the project of plain NAMEs (default: default)')
    .action(async (refs: string[], opts: { namespace?: string }) => {
      const found = await Promise.all(
        refs.map((r) => {
          const [p, n] = policyRef(r, opts.namespace);
          return ctx.client().get<PolicyView>(`/v1/policies/${seg(p)}/${seg(n)}`);
        }),
      );
      ctx.out(json(found));
    });

  pol
    .command('rm')
    .alias('remove')
    .description('Remove policies')
    .argument('<policy...>', 'NAME or PROJECT/NAME')
    .option('-n, --namespace <project>', 'the project of plain NAMEs (default: default)')
    .action(async (refs: string[], opts: { namespace?: string }) => {
      for (const r of refs) {
        const [p, n] = policyRef(r, opts.namespace);
        await ctx.client().delete(`/v1/policies/${seg(p)}/${seg(n)}`);
        ctx.line(`${p}/${n}`);
      }
    });

  pol
    .command('check')
    .description('Would a connection be allowed? Names the policy and rule that decided, or the isolation that denied')
    .argument('<from>', 'a container or an address')
    .argument('<to>', 'CONTAINER[:PORT[/PROTO]] or ADDRESS[:PORT[/PROTO]] (default tcp)')
    .option('--format <format>', 'table or json', 'table')
    .action(async (from: string, to: string, opts: { format: string }) => {
      const r = await ctx.client().post<PolicyCheckResult>('/v1/policies/check', { from, ...parseTarget(to) });
      if (parseFormat(opts.format) === 'json') ctx.out(json(r));
      else ctx.out(checkText(r));
    });

  pol
    .command('matrix')
    .description('Reachability between containers from the model; --probe verifies every cell with real connections')
    .option('--port <port/proto>', 'a port to check, e.g. 80/tcp (repeatable; default: the ports containers --expose)', collect)
    .option('-n, --namespace <project>', 'only containers of this project (repeatable)', collect)
    .option('--probe', 'try each cell for real and flag where the kernel disagrees with the model')
    .option('--timeout <ms>', 'how long a probe waits before it counts as dropped', '1000')
    .option('--format <format>', 'table or json', 'table')
    .action(async (opts: { port?: string[]; namespace?: string[]; probe?: boolean; timeout: string; format: string }) => {
      const timeoutMs = Number(opts.timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 50) throw new CliError(`invalid --timeout '${opts.timeout}': milliseconds, at least 50`);
      const m = await ctx.client().post<PolicyMatrix>('/v1/policies/matrix', {
        ports: opts.port?.map((p) => (p.includes('/') ? p : `${p}/tcp`)),
        projects: opts.namespace,
        probe: !!opts.probe,
        timeoutMs,
      });
      if (parseFormat(opts.format) === 'json') ctx.out(json(m));
      else ctx.out(matrixText(m));
      if (m.disagreements?.length) throw new ExitCode(1);
    });

  const proj = program.command('project').description('Projects: the namespaces network policies select (a compose project is one)');
  proj
    .command('ls')
    .alias('list')
    .description('List projects')
    .option('--format <format>', 'table or json', 'table')
    .action(async (opts: { format: string }) => {
      const list = await ctx.client().get<ProjectView[]>('/v1/projects');
      if (parseFormat(opts.format) === 'json') return ctx.out(json(list));
      const labels = (l: Record<string, string>) => Object.entries(l).map(([k, v]) => `${k}=${v}`).join(',');
      ctx.out(table(['NAME', 'CONTAINERS', 'POLICIES', 'LABELS'], list.map((p) => [p.name, String(p.containers), String(p.policies), labels(p.labels)])));
    });
  proj
    .command('inspect')
    .description('Show projects in detail (JSON)')
    .argument('<project...>')
    .action(async (names: string[]) => {
      ctx.out(json(await Promise.all(names.map((n) => ctx.client().get<ProjectView>(`/v1/projects/${seg(n)}`)))));
    });
  proj
    .command('label')
    .description('Set (KEY=VALUE) or remove (KEY-) labels of a project; namespaceSelectors see them at once')
    .argument('<project>')
    .argument('<labels...>')
    .action(async (name: string, labels: string[]) => {
      await ctx.client().post(`/v1/projects/${seg(name)}/labels`, parseLabelArgs(labels));
      ctx.line(`project/${name} labeled`);
    });

  program
    .command('label')
    .description('Set (KEY=VALUE) or remove (KEY-) labels of a container; policies and services see them at once')
    .argument('<container>')
    .argument('<labels...>')
    .action(async (ref: string, labels: string[]) => {
      await ctx.client().post(`/v1/containers/${seg(ref)}/labels`, parseLabelArgs(labels));
      ctx.line(ref);
    });
}

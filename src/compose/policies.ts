/**
 * Network policies in a compose file: top-level `x-weft: { policies: [NetworkPolicy, ...] }`.
 * Each is a networking.k8s.io/v1 NetworkPolicy as kubectl takes it; its namespace is the compose
 * project (a policy may name it, never another one). `up` applies them before any container
 * starts and deletes the project's policies the file no longer has; `down` deletes them all. The
 * ones compose owns carry the label com.docker.compose.project=PROJECT.
 */
import { dns1123LabelErrors, normalizePolicy, PolicyParseError, type PolicyDocument } from '../policy/parse.js';
import { LABELS } from './model.js';

/** The policies of the project, each labelled as compose's; throws Error listing every problem. */
export function projectPolicies(project: { name: string; extensions: Record<string, unknown> }): PolicyDocument[] {
  const ext = project.extensions['x-weft'];
  if (ext === undefined || ext === null) return [];
  const problems: string[] = [];
  if (typeof ext !== 'object' || Array.isArray(ext)) throw new Error('x-weft: must be a mapping, e.g. x-weft: {policies: [...]}');
  for (const k of Object.keys(ext)) if (k !== 'policies') problems.push(`x-weft.${k}: unknown key; the top-level x-weft takes policies (a list of NetworkPolicy objects)`);
  const list = (ext as Record<string, unknown>).policies ?? [];
  if (!Array.isArray(list)) throw new Error('x-weft.policies: must be a list of NetworkPolicy objects');
  if (list.length && dns1123LabelErrors(project.name).length)
    problems.push(`x-weft.policies: the project name "${project.name}" is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63); give the project such a name (-p or name:)`);
  const out: PolicyDocument[] = [];
  const seen = new Set<string>();
  list.forEach((obj, i) => {
    try {
      const doc = normalizePolicy(obj, `x-weft.policies[${i}]`);
      if (doc.namespace && doc.namespace !== project.name)
        problems.push(`x-weft.policies[${i}] (NetworkPolicy "${doc.name}"): metadata.namespace is "${doc.namespace}", but a compose file's policies belong to its own project "${project.name}"; remove the namespace`);
      if (seen.has(doc.name)) problems.push(`x-weft.policies[${i}]: a second policy named "${doc.name}"`);
      seen.add(doc.name);
      out.push({ ...doc, namespace: project.name, labels: { ...doc.labels, [LABELS.project]: project.name } });
    } catch (e) {
      if (e instanceof PolicyParseError) problems.push(...e.issues);
      else throw e;
    }
  });
  if (problems.length) throw new Error(problems.join('\n'));
  return out;
}

/** The compose front end: compose files -> Project (load.ts), Project + current state -> actions (plan.ts). */
export { ComposeError, PlanError, formatIssue, type ComposeIssue } from './errors.js';
export { loadProject, findComposeFiles, normalizeProjectName, isValidProjectName, type LoadOptions } from './load.js';
export * from './model.js';
export {
  planUp,
  planDown,
  describeAction,
  type Action,
  type Plan,
  type CurrentContainer,
  type CurrentNetwork,
  type CurrentService,
  type CurrentState,
  type UpOptions,
  type DownOptions,
} from './plan.js';
export type { ReplicaPort } from './ports.js';
export { projectPolicies } from './policies.js';

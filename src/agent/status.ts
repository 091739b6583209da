import type { ContainerState } from '../model/types.js';

/** Docker's human status: "Up 3 minutes", "Exited (0) 2 seconds ago", "Created". */
export function describeStatus(s: ContainerState, now = Date.now()): string {
  switch (s.phase) {
    case 'running':
      return `Up ${humanDuration(now - Date.parse(s.startedAt ?? new Date(now).toISOString()))}`;
    case 'exited':
      return `Exited (${s.exitCode ?? 0}) ${humanDuration(now - Date.parse(s.finishedAt ?? new Date(now).toISOString()))} ago`;
    case 'created':
      return 'Created';
    case 'creating':
      return 'Creating';
    case 'removing':
      return 'Removal In Progress';
  }
}

/** Docker's units.HumanDuration. */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.round(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.round(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.round(h / 24 / 30)} months`;
  return `${Math.round(h / 24 / 365)} years`;
}

import type { ContainerState } from '../model/types.js';
import { humanDuration } from '../model/duration.js';

/** Docker's human status: "Up 3 minutes", "Exited (0) 2 seconds ago", "Created". */
export function describeStatus(s: ContainerState, now = Date.now()): string {
  switch (s.phase) {
    case 'running': {
      const up = `Up ${humanDuration(now - Date.parse(s.startedAt ?? new Date(now).toISOString()))}`;
      // as Docker: "Up 2 minutes (healthy)", "(health: starting)"
      if (!s.health) return up;
      return `${up} (${s.health.status === 'starting' ? 'health: starting' : s.health.status})`;
    }
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

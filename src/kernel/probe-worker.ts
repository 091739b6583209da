/**
 * A connection prober, run inside a container's network namespace by probe.ts (node builtins only:
 * it starts as a bare `node` process). One JSON argument:
 *
 *   {"listen": [{"protocol": "tcp", "port": 80}, ...]}
 *     binds every listed port it can (one already in use is served by its owner), prints `ready`,
 *     accepts and closes TCP connections and echoes UDP datagrams until stdin closes.
 *   {"connect": [{"ip": "10.0.0.3", "protocol": "udp", "port": 80}, ...], "timeoutMs": 1000}
 *     tries them all at once and prints one JSON array of "open" | "refused" | "timeout" | "error: ...".
 *
 * "open" and "refused" both mean the packets got through (a refusal is the destination's answer);
 * "timeout" means they did not: a policy dropped them.
 */
import net from 'node:net';
import dgram from 'node:dgram';

interface Target {
  ip: string;
  protocol: 'tcp' | 'udp';
  port: number;
}

function tcp(t: Target, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: t.ip, port: t.port });
    const done = (r: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    s.on('connect', () => done('open'));
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'refused' : `error: ${e.code ?? e.message}`));
  });
}

function udp(t: Target, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(t.ip.includes(':') ? 'udp6' : 'udp4');
    const done = (r: string) => {
      clearTimeout(timer);
      s.close();
      resolve(r);
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    s.on('message', () => done('open'));
    // an ICMP port unreachable surfaces as ECONNREFUSED on a connected socket
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'refused' : `error: ${e.code ?? e.message}`));
    s.connect(t.port, t.ip, () => s.send('weft-probe'));
  });
}

/** Binds on :: (both families), else on 0.0.0.0 (a namespace without IPv6); false if the port is taken. */
async function serve(t: Omit<Target, 'ip'>, closers: Array<() => void>): Promise<boolean> {
  for (const host of ['::', '0.0.0.0']) {
    const ok = await new Promise<boolean>((resolve) => {
      if (t.protocol === 'tcp') {
        const srv = net.createServer((c) => c.destroy());
        srv.once('error', () => resolve(false));
        srv.listen({ port: t.port, host, ipv6Only: false }, () => {
          closers.push(() => srv.close());
          resolve(true);
        });
      } else {
        const s = dgram.createSocket({ type: host === '::' ? 'udp6' : 'udp4', ipv6Only: false });
        s.once('error', () => resolve(false));
        s.bind(t.port, host, () => {
          s.on('message', (msg, from) => s.send(msg, from.port, from.address));
          closers.push(() => s.close());
          resolve(true);
        });
      }
    });
    if (ok) return true;
  }
  return false;
}

async function listen(targets: Array<Omit<Target, 'ip'>>): Promise<void> {
  const closers: Array<() => void> = [];
  for (const t of targets) await serve(t, closers);
  process.stdout.write('ready\n');
  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const c of closers) c();
    process.exit(0);
  });
}

const spec = JSON.parse(process.argv[2] ?? '{}') as { listen?: Array<Omit<Target, 'ip'>>; connect?: Target[]; timeoutMs?: number };
if (spec.listen) await listen(spec.listen);
else {
  const timeout = spec.timeoutMs ?? 1000;
  const results = await Promise.all((spec.connect ?? []).map((t) => (t.protocol === 'tcp' ? tcp(t, timeout) : udp(t, timeout))));
  process.stdout.write(JSON.stringify(results) + '\n');
}

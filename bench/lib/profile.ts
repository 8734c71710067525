// Summary of a V8 CPU profile (node --cpu-prof): where the one JavaScript thread spent its time
// within a window, by function (self time) and by component (processor file, library, runtime).
import * as fs from 'fs';
import * as path from 'path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number; // µs, monotonic clock
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Window length covered by samples (ms). */
  wallMs: number;
  /** Share of the window per category: idle (waiting on I/O), garbage collection, program (V8/native), JS. */
  idle: number;
  gc: number;
  program: number;
  js: number;
  topFunctions: Array<{ name: string; where: string; share: number }>;
  components: Array<{ name: string; share: number }>;
}

/** Which part of the system a frame belongs to, from its script URL. */
export function componentOf(url: string, fn: string): string {
  if (fn === '(idle)') return '(idle)';
  if (fn === '(garbage collector)') return '(garbage collector)';
  if (fn === '(program)' || fn === '(root)') return '(program)';
  if (!url) return 'native/V8 builtins';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  const p = /dist\/processor\/src\/([^/]+)\.js/.exec(url);
  if (p) return `processor/${p[1]}.ts`;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] === 'internal' ? url.slice(14).split('/')[0] : url.slice(5)}`;
  return path.basename(url);
}

/**
 * Summarises the samples taken between `fromUs` and `toUs` (monotonic µs, the clock of
 * process.hrtime; the whole profile when omitted).
 */
export function summarizeProfile(file: string, fromUs?: number, toUs?: number, top = 15): ProfileSummary {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = prof.startTime;
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i];
    if ((fromUs !== undefined && t < fromUs) || (toUs !== undefined && t > toUs)) continue;
    // A sample stands for the time until the next one.
    const dt = i + 1 < prof.timeDeltas.length ? prof.timeDeltas[i + 1] : 0;
    if (dt <= 0 || dt > 1_000_000) continue;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const fnTime = new Map<string, { name: string; where: string; us: number }>();
  const compTime = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  let program = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const fn = n.callFrame.functionName || '(anonymous)';
    const comp = componentOf(n.callFrame.url, fn);
    compTime.set(comp, (compTime.get(comp) ?? 0) + us);
    if (fn === '(idle)') idle += us;
    else if (fn === '(garbage collector)') gc += us;
    else if (fn === '(program)' || fn === '(root)') program += us;
    const where = n.callFrame.url ? `${componentOf(n.callFrame.url, fn)}:${n.callFrame.lineNumber + 1}` : '';
    const k = `${fn}\u0000${where}`;
    const e = fnTime.get(k) ?? { name: fn, where, us: 0 };
    e.us += us;
    fnTime.set(k, e);
  }
  const share = (us: number) => (total > 0 ? us / total : 0);
  return {
    wallMs: total / 1000,
    idle: share(idle),
    gc: share(gc),
    program: share(program),
    js: share(total - idle - gc - program),
    topFunctions: [...fnTime.values()]
      .filter((f) => !['(idle)', '(program)', '(root)'].includes(f.name))
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, share: share(f.us) })),
    components: [...compTime.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, us]) => ({ name, share: share(us) })),
  };
}

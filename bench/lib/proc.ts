// CPU time and memory of processes and threads, read from /proc (Linux only).
//
// A Sampler watches named groups of processes (or of threads of one process), sampling every
// `intervalMs`: cumulative CPU ticks per pid/tid and the resident set size. Phases are marked
// with mark(name) / the next mark; cpuSeconds(group, from, to) and peakRssBytes(group, from, to)
// then answer per group and phase. Members may come and go (PostgreSQL backends): a member
// first seen inside a phase counts its whole CPU time to that phase, one gone keeps its last value.
import * as fs from 'fs';

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86-64 and arm64

export interface Member {
  /** A process id, or a thread id together with its process id. */
  pid: number;
  tid?: number;
  /** What resident size to count: the whole RSS (a program's own process) or only the private
   *  anonymous part (a PostgreSQL backend, whose RSS also counts the cluster's shared buffers). */
  rss: 'all' | 'anon' | 'none';
}

export interface Group {
  name: string;
  /** Called every `refreshMs` to find the current members (e.g. backends of a database). */
  members: () => Promise<Member[]> | Member[];
}

interface Sample {
  t: number; // ms since epoch
  ticks: Map<string, number>; // member key -> cumulative utime+stime
  rss: number; // bytes, summed over members
}

/** utime+stime in clock ticks of /proc/<pid>[/task/<tid>]/stat, or null if it is gone. */
export function readTicks(pid: number, tid?: number): number | null {
  try {
    const s = fs.readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'latin1');
    // The command name (field 2) may contain spaces and parentheses: fields count from the last ')'.
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]); // fields 14 and 15: utime, stime
  } catch {
    return null;
  }
}

/** Resident bytes of a process: all of it, or only its anonymous (private) memory. */
export function readRss(pid: number, kind: 'all' | 'anon'): number | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
    const m = new RegExp(`^${kind === 'all' ? 'VmRSS' : 'RssAnon'}:\\s+(\\d+) kB`, 'm').exec(s);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Threads of a process whose name (15 characters at most, as the kernel keeps it) starts with a prefix. */
export function threadsNamed(pid: number, prefix: string): Member[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .filter((tid) => {
        try {
          return fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'latin1').trim().startsWith(prefix.slice(0, 15));
        } catch {
          return false;
        }
      })
      .map((tid) => ({ pid, tid: Number(tid), rss: 'none' as const }));
  } catch {
    return [];
  }
}

/** Machine-wide busy share since the last call (all cores together, 0..1). */
export class MachineLoad {
  private last = this.read();
  private read(): { busy: number; total: number } {
    const f = fs.readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  }
  take(): number {
    const now = this.read();
    const share = (now.busy - this.last.busy) / Math.max(1, now.total - this.last.total);
    this.last = now;
    return share;
  }
}

/**
 * Waits until the machine is quiet: its busy share over `windowSec` at most `maxBusy`, or
 * `timeoutSec` passed. A stack just started (Connect's JIT, the benchmark's own connectors
 * starting) keeps the two cores busy for a minute or more, and a phase measured then measures
 * that, not the systems. Returns the last window's busy share and the seconds waited.
 */
export async function waitQuiet(opts: { maxBusy: number; windowSec: number; timeoutSec: number }): Promise<{ busy: number; waitedSec: number }> {
  const started = Date.now();
  const m = new MachineLoad();
  for (;;) {
    await new Promise((r) => setTimeout(r, opts.windowSec * 1000));
    const busy = m.take();
    const waitedSec = (Date.now() - started) / 1000;
    if (busy <= opts.maxBusy || waitedSec >= opts.timeoutSec) return { busy, waitedSec };
  }
}

const key = (m: Member) => (m.tid === undefined ? `${m.pid}` : `${m.pid}/${m.tid}`);

export class Sampler {
  private readonly samples = new Map<string, Sample[]>();
  private readonly members = new Map<string, Member[]>();
  private readonly marks: Array<{ name: string; t: number }> = [];
  private timer: NodeJS.Timeout | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private refreshing = false;

  constructor(
    private readonly groups: Group[],
    private readonly intervalMs = 250,
    private readonly refreshMs = 1000,
  ) {
    for (const g of groups) {
      this.samples.set(g.name, []);
      this.members.set(g.name, []);
    }
  }

  async start(): Promise<void> {
    await this.refresh();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.refreshTimer = setInterval(() => void this.refresh(), this.refreshMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.timer = this.refreshTimer = null;
    this.sample();
  }

  /** Re-reads the members of every group now (call after starting a process of interest). */
  async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      for (const g of this.groups) {
        try {
          this.members.set(g.name, await g.members());
        } catch {
          // keep the previous members (a database briefly unreachable)
        }
      }
    } finally {
      this.refreshing = false;
    }
  }

  mark(name: string, t = Date.now()): void {
    this.sample();
    this.marks.push({ name, t });
  }

  markTime(name: string): number | undefined {
    return this.marks.find((m) => m.name === name)?.t;
  }

  private sample(): void {
    const t = Date.now();
    for (const g of this.groups) {
      const ticks = new Map<string, number>();
      let rss = 0;
      for (const m of this.members.get(g.name)!) {
        const v = readTicks(m.pid, m.tid);
        if (v !== null) ticks.set(key(m), v);
        if (m.rss !== 'none') rss += readRss(m.pid, m.rss) ?? 0;
      }
      this.samples.get(g.name)!.push({ t, ticks, rss });
    }
  }

  /** CPU seconds the group used between two instants (ms since epoch). */
  cpuSeconds(group: string, from: number, to: number): number {
    const s = this.samples.get(group)!;
    const inside = s.filter((x) => x.t >= from && x.t <= to);
    if (inside.length === 0) return 0;
    const before = [...s].reverse().find((x) => x.t < from);
    const first = new Map<string, number>();
    const last = new Map<string, number>();
    for (const x of inside) {
      for (const [k, v] of x.ticks) {
        if (!first.has(k)) first.set(k, before?.ticks.get(k) ?? (x === inside[0] ? v : 0));
        last.set(k, v);
      }
    }
    let ticks = 0;
    for (const [k, v] of last) ticks += v - (first.get(k) ?? 0);
    return ticks / CLK_TCK;
  }

  peakRssBytes(group: string, from: number, to: number): number {
    let peak = 0;
    for (const x of this.samples.get(group)!) if (x.t >= from && x.t <= to && x.rss > peak) peak = x.rss;
    return peak;
  }
}


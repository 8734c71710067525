// The share of inserts, updates and deletes in the load, e.g. "insert=50,update=40,delete=10".
import { Prng } from './prng';

export const OPS = ['insert', 'update', 'delete'] as const;
export type Op = (typeof OPS)[number];
export type Mix = Readonly<Record<Op, number>>;

export const DEFAULT_MIX: Mix = { insert: 50, update: 40, delete: 10 };

/** Weights are relative; ops left out get 0. Throws with a message fit for the command line. */
export function parseMix(text: string): Mix {
  const mix: Record<Op, number> = { insert: 0, update: 0, delete: 0 };
  const seen = new Set<string>();
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([a-z]+)\s*=\s*(\d+(?:\.\d+)?)$/.exec(part);
    if (!m) throw new Error(`--mix: expected op=weight, got '${part}'`);
    const [, op, w] = m;
    if (!(OPS as readonly string[]).includes(op)) throw new Error(`--mix: unknown op '${op}' (use ${OPS.join(', ')})`);
    if (seen.has(op)) throw new Error(`--mix: '${op}' given twice`);
    seen.add(op);
    mix[op as Op] = Number(w);
  }
  if (mix.insert + mix.update + mix.delete <= 0) throw new Error('--mix: at least one weight must be positive');
  return mix;
}

export function formatMix(mix: Mix): string {
  const total = mix.insert + mix.update + mix.delete;
  return OPS.map((op) => `${op} ${Math.round((100 * mix[op]) / total)}%`).join(', ');
}

export function pickOp(mix: Mix, rng: Prng): Op {
  return rng.weighted(OPS.map((op) => [op, mix[op]] as const));
}

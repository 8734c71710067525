// Shared command-line plumbing: flag parsing, exit codes and the live progress line.
import { parseArgs, ParseArgsConfig } from 'node:util';

/** Exit codes shared by seed, load and verify. */
export const EXIT = { ok: 0, failed: 1, config: 2, interrupted: 130 } as const;

/** Bad flags, missing environment, unreachable service: exit 2 with one line naming it. */
export class ConfigError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;

export function parseFlags(argv: string[], options: Options): Record<string, string | boolean | undefined> {
  try {
    const { values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
    return values as Record<string, string | boolean | undefined>;
  } catch (e) {
    throw new ConfigError(`${(e as Error).message} (see --help)`);
  }
}

export function intFlag(name: string, raw: string | boolean | undefined, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (raw === undefined) return dflt;
  const v = Number(raw);
  if (typeof raw !== 'string' || !/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new ConfigError(`--${name} must be an integer between ${min} and ${max}, got '${raw}'`);
  }
  return v;
}

export function numberFlag(name: string, raw: string | boolean | undefined, dflt: number, min: number): number {
  if (raw === undefined) return dflt;
  const v = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(v) || v < min) {
    throw new ConfigError(`--${name} must be a number >= ${min}, got '${raw}'`);
  }
  return v;
}

/** Thousands separators make rates and counts readable at a glance: 12,345. */
export function fmt(n: number | bigint): string {
  return typeof n === 'bigint' ? n.toLocaleString('en-US') : Math.round(n).toLocaleString('en-US');
}

/** "1 event", "2 events". */
export function plural(n: number, word: string): string {
  return `${fmt(n)} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * One line rewritten in place on a terminal; on a pipe or CI log (no carriage-return
 * redraw) a plain line every `plainEverySec` seconds instead, so logs stay readable.
 */
export class ProgressLine {
  private readonly tty: boolean;
  private lastPlain = 0;
  private shown = false;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainEverySec = 1,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  update(text: string): void {
    if (this.tty) {
      const width = this.stream.columns || 120;
      this.stream.write(`\r${text.length >= width ? text.slice(0, width - 1) : text}\x1b[K`);
      this.shown = true;
      return;
    }
    const now = Date.now();
    if (now - this.lastPlain >= this.plainEverySec * 1000 - 50) {
      this.lastPlain = now;
      this.stream.write(`${text}\n`);
    }
  }

  /** Ends the redrawn line so that the summary starts on a fresh one. */
  done(): void {
    if (this.tty && this.shown) this.stream.write('\n');
    this.shown = false;
  }
}

/**
 * Runs a command's main function and turns its outcome into the process exit code.
 * Only ConfigError maps to 2 with a single line; anything unexpected also exits 2 (no verdict
 * was reached) but keeps its stack for whoever has to fix it.
 */
export function runMain(tool: string, main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      if (e instanceof ConfigError) {
        process.stderr.write(`${tool}: ${e.message}\n`);
      } else {
        const err = e as Error & { code?: string };
        process.stderr.write(`${tool}: unexpected error: ${err?.message || err?.code || e}\n`);
        // Database and network errors carry a code and are about the environment, not this
        // program: one line is enough. Anything else is a bug and keeps its stack.
        if (!err?.code && err?.stack) process.stderr.write(`${err.stack}\n`);
      }
      process.exitCode = EXIT.config;
    },
  );
}

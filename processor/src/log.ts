// Structured JSON logs, one object a line. Secrets never reach a log: URLs lose their password.
const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type Level = keyof typeof LEVELS;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return redactText(u.toString());
  } catch {
    return '<invalid url>';
  }
}

// scheme://user:PASSWORD@host — the user info ends at the LAST '@' (as WHATWG URL and node-postgres
// read it), so a password holding '@' (or even '/') is hidden whole. Greedy on purpose: hiding a
// little too much (an '@' later in the same URL) is harmless, showing part of a password is not.
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"'<>]*:)[^\s"'<>]*@/gi;
// libpq keyword form (`password=...`) and URL query parameters.
const KEYWORD_PASSWORD = /\b(password|passwd)=[^\s&"'<>]*/gi;

/** Passwords inside any text (an error from a driver may quote a connection string). */
export function redactText(text: string): string {
  return text.replace(URL_PASSWORD, '$1***@').replace(KEYWORD_PASSWORD, '$1=***');
}

/** Applied to every value at any depth: strings lose passwords, errors become their (redacted)
 *  message, BigInts (offsets, LSNs) become exact text. */
function logValue(_key: string, v: unknown): unknown {
  if (typeof v === 'string') return redactText(v);
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return redactText(v.message);
  return v;
}

export function createLogger(level: Level, out: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const min = LEVELS[level];
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < min) return;
    const record = { time: new Date().toISOString(), level: lvl, msg, ...fields };
    let line: string;
    try {
      line = JSON.stringify(record, logValue);
    } catch (err) {
      // A field that cannot be serialised (a cycle) must not take the process down with it.
      line = JSON.stringify({ time: record.time, level: lvl, msg: redactText(msg), logError: `fields not serialisable: ${(err as Error).message}` });
    }
    out(`${line}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

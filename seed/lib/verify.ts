// verify's flow: wait (bounded) until the pipeline has caught up, then reconcile in full.
// runVerify does the I/O and returns a plain report; formatReport turns it into lines.
import { Client } from 'pg';
import { tableExists } from './db';
import { fmt, plural } from './cli';
import { LagProbe, LagState } from './kafkalag';
import { DiffKind, DiffResult, diffSorted, differingColumns } from './merge';
import { FactCheck, Fingerprint, ORDER_COLUMNS, Rejected, checkFacts, fetchRows, fingerprint, hashBatches, rejectedEvents, sameFingerprint } from './reconcile';

export const SOURCE_TABLE = 'public.orders';
export const LATEST_TABLE = 'public.orders_latest';
export const FACT_TABLE = 'public.orders_fact';

export interface VerifyInputs {
  source: Client;
  warehouse: Client;
  /** Null when KAFKA_BOOTSTRAP_SERVERS is unset: the lag check is skipped. */
  lag: LagProbe | null;
  timeoutSec: number;
  maxDiffs: number;
  processorUrl?: string;
  /** Leave keys with a rejected event (cdc.rejected_events) out of the row comparison. */
  allowRejected?: boolean;
  onProgress?: (line: string) => void;
}

export interface RowDetail {
  key: string;
  kind: DiffKind;
  columns: { column: string; source: string | null; target: string | null }[];
}

export interface VerifyReport {
  caughtUp: boolean;
  waitedSec: number;
  /** Last lag seen; null when not checked. */
  lag: LagState | null;
  sourceRows: number;
  latestExists: boolean;
  factExists: boolean;
  rows: DiffResult | null;
  rowDetails: RowDetail[];
  facts: FactCheck | null;
  /** Null when cdc.rejected_events is not readable. */
  rejected: { total: number; keys: number; reasons: Record<string, string> } | null;
  /** Keys left out of the row comparison because of --allow-rejected. */
  excludedKeys: number;
  /** Only asked when the pipeline did not catch up, to say who is stuck. */
  processorHealth?: string;
  /** What each stopped consistency watermark waits for (pipeline_status), when not caught up. */
  watermarkWaits?: string[];
}

export async function runVerify(inp: VerifyInputs): Promise<VerifyReport> {
  const t0 = Date.now();
  const deadline = t0 + inp.timeoutSec * 1000;
  let lag: LagState | null = null;
  let caughtUp = false;
  let fpSource: Fingerprint | null = null;
  let fpLatest: Fingerprint | null = null;
  let rejected: Rejected | null = null;
  let exclude: string[] = [];

  const latestExistsNow = () => fpLatest !== null;
  let rows: DiffResult | null = null;
  let rowDetails: RowDetail[] = [];
  let waitedSec = 0;

  for (;;) {
    // Lag 0 is not enough: an event can still be inside Debezium. So wait until the data agree
    // too, re-checking with cheap fingerprints rather than full comparisons.
    for (;;) {
      rejected = await rejectedEvents(inp.warehouse);
      exclude = inp.allowRejected && rejected ? [...rejected.byKey.keys()] : [];
      [lag, fpSource, fpLatest] = await Promise.all([
        inp.lag ? inp.lag.probe(inp.warehouse) : Promise.resolve(null),
        fingerprint(inp.source, SOURCE_TABLE, exclude),
        fingerprint(inp.warehouse, LATEST_TABLE, exclude),
      ]);
      const lagOk = lag === null || (lag.kind === 'lag' && lag.total === 0n) || (lag.kind === 'no-topic' && (fpSource?.rows ?? 0) === 0);
      const agree = sameFingerprint(fpSource, fpLatest);
      inp.onProgress?.(
        `verify: waiting ${((Date.now() - t0) / 1000).toFixed(0)}s/${inp.timeoutSec}s | ${lagText(lag)} | orders ${fmt(fpSource?.rows ?? 0)} rows, ` +
          `orders_latest ${fpLatest ? `${fmt(fpLatest.rows)} rows` : 'missing'}${agree ? ', agree' : ', differ'}`,
      );
      caughtUp = lagOk && agree;
      if (caughtUp || Date.now() >= deadline) break;
      await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
    }
    waitedSec = (Date.now() - t0) / 1000;
    if (!latestExistsNow()) break;

    rows = await diffSorted(hashBatches(inp.source, SOURCE_TABLE, exclude), hashBatches(inp.warehouse, LATEST_TABLE, exclude), inp.maxDiffs);
    const clean = rows.missing + rows.extra + rows.different === 0;
    // A difference right after the fingerprints agreed means someone is still writing to the
    // source: keep waiting while there is time rather than report a moving target.
    if (clean || !caughtUp || Date.now() >= deadline) break;
    caughtUp = false;
    await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
  }
  if (rows) rowDetails = await describeDiffs(inp.source, inp.warehouse, rows);
  const latestExists = latestExistsNow();
  const factExists = await tableExists(inp.warehouse, FACT_TABLE);
  const rejectedKeys = rejected ? [...rejected.byKey.keys()] : [];
  const facts = factExists && latestExists ? await checkFacts(inp.warehouse, inp.maxDiffs, rejectedKeys) : null;
  const processorHealth = !caughtUp && inp.processorUrl ? await health(inp.processorUrl) : undefined;
  const watermarkWaits = caughtUp ? undefined : await watermarkWaitsFor(inp.warehouse);
  return {
    caughtUp,
    waitedSec,
    lag,
    sourceRows: rows?.sourceRows ?? fpSource?.rows ?? 0,
    latestExists,
    factExists,
    rows,
    rowDetails,
    facts,
    rejected: rejected && {
      total: rejected.total,
      keys: rejected.byKey.size,
      reasons: Object.fromEntries(rowDetails.filter((d) => rejected!.byKey.has(d.key)).map((d) => [d.key, rejected!.byKey.get(d.key)!])),
    },
    excludedKeys: exclude.length,
    processorHealth,
    watermarkWaits,
  };
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function describeDiffs(source: Client, warehouse: Client, rows: DiffResult): Promise<RowDetail[]> {
  const keys = rows.samples.map((s) => s.key);
  const [a, b] = await Promise.all([fetchRows(source, SOURCE_TABLE, keys), fetchRows(warehouse, LATEST_TABLE, keys)]);
  return rows.samples.map(({ key, kind }) => {
    const k = key.toString();
    const sa = a.get(k);
    const sb = b.get(k);
    // The row may have changed since the snapshot that flagged it; then no column differs any more.
    const columns = kind === 'different' && sa && sb ? differingColumns(ORDER_COLUMNS, sa, sb) : [];
    return { key: k, kind, columns };
  });
}

/** A watermark that waits hides changes from _latest: say for what (before migration 0005, no
 *  view: nothing to say). A view that cannot be read is said too, not passed over. */
async function watermarkWaitsFor(warehouse: Client): Promise<string[]> {
  try {
    const { rows } = await warehouse.query(
      `SELECT format('consistency watermark of %s waits for %s', source, waiting_for) AS w FROM public.pipeline_status
        WHERE waiting_for IS NOT NULL ORDER BY source`);
    return rows.map((r) => r.w as string);
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return []; // undefined_table
    return [`cannot read public.pipeline_status: ${(err as Error).message}`];
  }
}

async function health(url: string): Promise<string> {
  const target = `${url.replace(/\/+$/, '')}/health`;
  try {
    const res = await fetch(target, { signal: AbortSignal.timeout(2000) });
    const body = (await res.text()).replace(/\s+/g, ' ').slice(0, 200);
    return `processor ${target}: HTTP ${res.status} ${body}`;
  } catch (e) {
    return `processor ${target}: unreachable (${(e as Error).message})`;
  }
}

export function lagText(lag: LagState | null): string {
  if (lag === null) return 'Kafka lag not checked';
  if (lag.kind === 'no-topic') return 'topic not created yet';
  if (lag.kind === 'error') return `Kafka not answering (${lag.message})`;
  const behind = lag.partitions.filter((p) => p.lag > 0n);
  const detail = behind.length > 1 ? ` (${behind.map((p) => `p${p.partition}: ${fmt(p.lag)}`).join(', ')})` : '';
  return `Kafka lag ${fmt(lag.total)}${detail}`;
}

const q = (v: string | null) => (v === null ? 'NULL' : `'${v}'`);

function listKeys(details: RowDetail[], kind: DiffKind): string {
  return details.filter((d) => d.kind === kind).map((d) => d.key).join(', ');
}

/** The report as printable lines; the last line is the one-line verdict. */
export function formatReport(r: VerifyReport, opts: { kafkaChecked: boolean; topic: string }): { ok: boolean; lines: string[] } {
  const reasons = r.rejected?.reasons ?? {};
  const rejectedLines = (kind: DiffKind) =>
    r.rowDetails
      .filter((x) => x.kind === kind && reasons[x.key])
      .map((x) => `      order_id ${x.key} was rejected by the processor: ${reasons[x.key]}`);
  const lines: string[] = [];
  const problems: string[] = [];

  if (!r.caughtUp) {
    const why =
      (r.lag?.kind === 'lag' && r.lag.total > 0n) || r.lag?.kind === 'error'
        ? lagText(r.lag)
        : r.lag?.kind === 'no-topic'
          ? `topic ${opts.topic} does not exist`
          : 'source and warehouse still differ';
    problems.push(`not caught up after ${r.waitedSec.toFixed(0)} s (${why})`);
    if (r.processorHealth) lines.push(`  ${r.processorHealth}`);
    for (const w of r.watermarkWaits ?? []) lines.push(`  ${w}`);
  }

  const empty = r.sourceRows === 0;
  if (!r.latestExists && !empty) problems.push(`table ${LATEST_TABLE} does not exist (has the processor consumed anything?)`);
  if (r.latestExists && !r.factExists) problems.push(`table ${FACT_TABLE} does not exist`);

  const d = r.rows;
  if (d) {
    lines.push(`  ${SOURCE_TABLE}: ${fmt(d.sourceRows)} rows; ${LATEST_TABLE}: ${fmt(d.targetRows)} rows; ${fmt(d.matched)} identical`);
    if (d.missing + d.extra + d.different > 0) {
      const explained = Object.keys(reasons).length;
      problems.push(
        `${LATEST_TABLE}: ${fmt(d.missing)} missing, ${fmt(d.extra)} extra, ${fmt(d.different)} different of ${fmt(d.sourceRows)} source rows` +
          (explained ? ` (${explained === r.rowDetails.length ? 'all' : `${explained} of the first ${r.rowDetails.length}`} rejected by the processor; --allow-rejected leaves those out)` : ''),
      );
      const shown = r.rowDetails.length;
      lines.push(`  first ${shown} differing keys:`);
      if (d.missing) lines.push(`    missing from ${LATEST_TABLE} (${fmt(d.missing)}): order_id ${listKeys(r.rowDetails, 'missing') || '…'}`, ...rejectedLines('missing'));
      if (d.extra) lines.push(`    extra in ${LATEST_TABLE} (${fmt(d.extra)}): order_id ${listKeys(r.rowDetails, 'extra') || '…'}`, ...rejectedLines('extra'));
      if (d.different) lines.push(`    different (${fmt(d.different)}):`);
      for (const x of r.rowDetails.filter((x) => x.kind === 'different')) {
        const cols = x.columns.length
          ? x.columns.map((c) => `${c.column} ${q(c.source)} (source) vs ${q(c.target)} (warehouse)`).join('; ')
          : 'changed again since it was compared';
        lines.push(`      order_id ${x.key}: ${cols}${reasons[x.key] ? ` (rejected by the processor: ${reasons[x.key]})` : ''}`);
      }
    }
  }

  const f = r.facts;
  if (f) {
    const ops = Object.entries(f.byOp)
      .sort()
      .map(([op, n]) => `${op} ${fmt(n)}`)
      .join(', ');
    lines.push(`  ${FACT_TABLE}: ${fmt(f.total)} events (${ops || 'none'}) for ${fmt(f.keys)} keys`);
    if (f.duplicateRows > 0) {
      problems.push(`${FACT_TABLE}: ${plural(f.duplicateRows, 'duplicate event')}`);
      lines.push(`    duplicated (source_lsn, op, order_id), first ${f.duplicateSamples.length}: ${f.duplicateSamples.map((s) => `order_id ${s.orderId} op ${s.op} lsn ${s.lsn} ×${s.copies}`).join('; ')}`);
    }
    if (f.nullPositions > 0) problems.push(`${FACT_TABLE}: ${plural(f.nullPositions, 'event')} without source_lsn`);
    if (f.badHistoryKeys > 0) {
      problems.push(`${plural(f.badHistoryKeys, 'key')} with a broken history`);
      lines.push(`    broken histories, first ${f.badHistorySamples.length}:`);
      for (const s of f.badHistorySamples) {
        lines.push(`      order_id ${s.orderId}: ${s.rule} ('${s.op}'${s.prevOp ? ` after '${s.prevOp}'` : ''}, source_lsn ${s.lsn ?? 'NULL'})`);
      }
    }
    if (f.lastEventMismatches > 0) {
      problems.push(`${plural(f.lastEventMismatches, 'key')} whose last fact event does not match ${LATEST_TABLE}`);
      lines.push(`    last event vs ${LATEST_TABLE}, first ${f.lastEventSamples.length}:`);
      for (const s of f.lastEventSamples) lines.push(`      order_id ${s.orderId}: ${s.rule}`);
    }
  }
  if (r.rejected?.total) {
    lines.push(
      `  note: ${plural(r.rejected.total, 'event')} in cdc.rejected_events (see public.rejected_events_summary)` +
        (r.rejected.keys ? `; ${plural(r.rejected.keys, 'order key')} among them left out of the history checks` : ''),
    );
  }
  if (r.excludedKeys) lines.push(`  note: ${plural(r.excludedKeys, 'key')} with rejected events left out of the row comparison (--allow-rejected)`);
  if (!opts.kafkaChecked) lines.push('  note: KAFKA_BOOTSTRAP_SERVERS is not set, so the Kafka lag was not checked');

  const ok = problems.length === 0;
  if (ok) {
    const lagPart = opts.kafkaChecked ? (r.lag?.kind === 'no-topic' ? 'no topic yet' : 'Kafka lag 0') : 'Kafka lag not checked';
    const factPart = f
      ? `${FACT_TABLE}: ${fmt(f.total)} events for ${fmt(f.keys)} keys, none duplicated, every history sane`
      : 'no events yet';
    lines.push(
      empty && !d?.targetRows
        ? `verify: OK — source and warehouse are both empty (${lagPart})`
        : `verify: OK — ${fmt(d?.matched ?? 0)} rows identical in ${SOURCE_TABLE} and ${LATEST_TABLE} (all 7 columns); ${factPart}; caught up in ${r.waitedSec.toFixed(1)} s (${lagPart})`,
    );
  } else {
    lines.push(`verify: FAILED — ${problems.join('; ')}`);
  }
  return { ok, lines };
}

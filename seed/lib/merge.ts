// Reconciliation of two row streams sorted by key, one row of each side in memory at a time:
// a merge join, so a million-row table is compared without loading either side.

export interface KeyedHash {
  readonly key: bigint;
  readonly hash: string;
}

export type DiffKind = 'missing' | 'extra' | 'different';

export interface DiffItem {
  readonly kind: DiffKind;
  readonly key: bigint;
}

export interface DiffResult {
  sourceRows: number;
  targetRows: number;
  matched: number;
  missing: number;
  extra: number;
  different: number;
  /** The first `limit` differences in key order. */
  samples: DiffItem[];
}

/** Reads a stream that arrives in batches without awaiting per row. */
class BatchReader {
  private batch: readonly KeyedHash[] = [];
  private i = 0;
  private done = false;
  private last: bigint | undefined;

  constructor(
    private readonly it: AsyncIterator<readonly KeyedHash[]>,
    private readonly side: string,
  ) {}

  /** The current row, or undefined at the end. */
  async peek(): Promise<KeyedHash | undefined> {
    while (this.i >= this.batch.length) {
      if (this.done) return undefined;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return undefined;
      }
      this.batch = r.value;
      this.i = 0;
    }
    const row = this.batch[this.i];
    // A merge join silently gives wrong answers on unsorted input: refuse it instead.
    if (this.last !== undefined && row.key <= this.last) {
      throw new Error(`${this.side} rows are not strictly ascending by key (${row.key} after ${this.last})`);
    }
    return row;
  }

  advance(): void {
    this.last = this.batch[this.i].key;
    this.i++;
  }
}

export async function diffSorted(
  source: AsyncIterable<readonly KeyedHash[]>,
  target: AsyncIterable<readonly KeyedHash[]>,
  limit: number,
): Promise<DiffResult> {
  const a = new BatchReader(source[Symbol.asyncIterator](), 'source');
  const b = new BatchReader(target[Symbol.asyncIterator](), 'target');
  const res: DiffResult = { sourceRows: 0, targetRows: 0, matched: 0, missing: 0, extra: 0, different: 0, samples: [] };
  const note = (kind: DiffKind, key: bigint) => {
    res[kind]++;
    if (res.samples.length < limit) res.samples.push({ kind, key });
  };
  for (;;) {
    const [x, y] = [await a.peek(), await b.peek()];
    if (!x && !y) break;
    if (x && (!y || x.key < y.key)) {
      note('missing', x.key);
      res.sourceRows++;
      a.advance();
    } else if (y && (!x || y.key < x.key)) {
      note('extra', y.key);
      res.targetRows++;
      b.advance();
    } else {
      if (x!.hash === y!.hash) res.matched++;
      else note('different', x!.key);
      res.sourceRows++;
      res.targetRows++;
      a.advance();
      b.advance();
    }
  }
  return res;
}

/** Column-by-column comparison of one key's two versions, for the report. */
export function differingColumns(
  columns: readonly string[],
  source: Readonly<Record<string, string | null>>,
  target: Readonly<Record<string, string | null>>,
): { column: string; source: string | null; target: string | null }[] {
  return columns.filter((c) => source[c] !== target[c]).map((c) => ({ column: c, source: source[c], target: target[c] }));
}

// One event the warehouse refuses must not stop the stream: the batch is retried a few times,
// then split to find the event at fault, which goes to cdc.rejected_events (stage 'load'); all
// the others land, in order, and the offsets move past the reject.
import { Lane } from '../../src/lane';
import { quietLog, scratchWarehouse, type Scratch } from './scratch';
import { order, tableFixture } from './events';

let wh: Scratch;
beforeAll(async () => { wh = await scratchWarehouse(); });
afterAll(async () => { await wh?.drop(); });

/** Waits for `p` at most `ms` (the timer is cleared, so jest can exit). */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => { timer = setTimeout(r, ms); })]);
  clearTimeout(timer);
}

describe('an event the warehouse refuses', () => {
  it('is rejected alone (stage load, with the error); the rest of its batch lands', async () => {
    const fx = tableFixture('poison');
    const writer = wh.writer({ group: 'poison' });
    // The table exists, with a constraint one value breaks (as a value the column type refuses would).
    await writer.write([await fx.item(0, 0n, 'c', order(1n), 100n)]);
    await wh.admin.query(`ALTER TABLE poison_fact ADD CONSTRAINT no_poison CHECK (status <> 'cancelled')`);

    const failures: string[] = [];
    const hooks: any = {
      written: () => undefined, failing: () => failures.push('failing'), recovered: () => undefined, writeError: () => undefined,
      stopping: () => false, backoff: () => 1, gap: () => undefined,
    };
    const lane = new Lane(0, { maxEvents: 1000, maxBytes: 1 << 30, lingerMs: 60_000 }, writer, hooks, quietLog());
    const heartbeat = async () => undefined;
    const statuses = ['pending', 'paid', 'shipped', 'cancelled', 'delivered', 'paid', 'pending'];
    for (let i = 0; i < 14; i++) {
      const partition = i % 2;
      const offset = BigInt(1 + (i >> 1));
      const status = partition === 0 && offset === 4n ? 'cancelled' : statuses[i % statuses.length] === 'cancelled' ? 'paid' : statuses[i % statuses.length];
      await lane.add(await fx.item(partition, partition === 0 ? offset : offset - 1n, 'c', order(BigInt(10 + i), '1.00', status), 200n + BigInt(i)), 10, heartbeat);
    }
    // Bounded: before the fix the batch was retried without end.
    await within(lane.drain(), 30_000);

    const rejected = await wh.admin.query(`SELECT partition, "offset", stage, reason, source_table FROM cdc.rejected_events`);
    expect(rejected.rows).toEqual([{ partition: 0, offset: '4', stage: 'load', reason: expect.stringContaining('no_poison'), source_table: 'poison' }]);
    expect(rejected.rows[0].reason).toContain('23514');
    const fact = await wh.admin.query(`SELECT kafka_partition AS p, kafka_offset AS o FROM poison_fact ORDER BY 1, 2`);
    const landed = fact.rows.map((r) => `${r.p}:${r.o}`);
    expect(landed).toEqual(['0:0', '0:1', '0:2', '0:3', '0:5', '0:6', '0:7', '1:0', '1:1', '1:2', '1:3', '1:4', '1:5', '1:6']);
    const offsets = await wh.admin.query(`SELECT partition, next_offset FROM cdc.offsets WHERE consumer_group = 'poison' ORDER BY 1`);
    expect(offsets.rows).toEqual([{ partition: 0, next_offset: '8' }, { partition: 1, next_offset: '7' }]);
    // A data error is not a warehouse outage: consumption was never paused for it.
    expect(failures).toEqual([]);
  });
});

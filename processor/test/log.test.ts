import { createLogger, redactText, redactUrl } from '../src/log';

describe('secrets in logs', () => {
  it.each([
    ['postgres://u:p@ss@host:5432/db', 'postgres://u:***@host:5432/db'],
    ['postgres://u:a@b@c@host/db', 'postgres://u:***@host/db'],
    ['postgres://processor:s3cret@127.0.0.1:15433/warehouse', 'postgres://processor:***@127.0.0.1:15433/warehouse'],
    ['postgresql://:onlypw@host/db', 'postgresql://:***@host/db'],
    ['postgres://u@host/db?password=s3cret&sslmode=require', 'postgres://u@host/db?password=***&sslmode=require'],
  ])('redactUrl hides the whole password of %s', (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
  });

  it.each([
    // The last '@' before the host ends the user info: a password may itself hold '@'.
    ['connect failed: postgres://u:p@ss@host:5432/db', 'connect failed: postgres://u:***@host:5432/db'],
    ['postgres://u:a@b@c@host/db is down', 'postgres://u:***@host/db is down'],
    ['{"url":"postgres://u:p@ss@h/db","who":"a@b.c"}', '{"url":"postgres://u:***@h/db","who":"a@b.c"}'],
    ['postgres://u:pw@host/db failed for admin@example.com', 'postgres://u:***@host/db failed for admin@example.com'],
    ['two: postgres://a:x@y@h1/d and http://b:z@h2/', 'two: postgres://a:***@h1/d and http://b:***@h2/'],
    // A password that even holds '/' is hidden whole rather than cut at the slash.
    ['postgres://u:p/w@host/db', 'postgres://u:***@host/db'],
    ['host=h user=u password=s3cr@t dbname=w', 'host=h user=u password=*** dbname=w'],
    ['postgres://h/db?user=u&password=s3cret&sslmode=require', 'postgres://h/db?user=u&password=***&sslmode=require'],
  ])('redactText hides passwords in %s', (text, redacted) => {
    expect(redactText(text)).toBe(redacted);
  });

  it.each([
    'postgres://user@host/db',
    'http://127.0.0.1:18080/apis/ccompat/v7',
    'mail admin@example.com at 10:00',
  ])('redactText leaves %s alone', (text) => {
    expect(redactText(text)).toBe(text);
  });

  it('redacts messages, string fields and errors, and respects the level', () => {
    const lines: string[] = [];
    const log = createLogger('info', (l) => lines.push(l));
    log.debug('not shown postgres://u:p@ss@h/db');
    log.warn('cannot reach postgres://u:p@ss@h/db', { url: 'postgres://u:p@ss@h/db', error: new Error('at postgres://u:p@ss@h/db'), n: 5n });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/ss@h|p@ss/);
    expect(JSON.parse(lines[0])).toMatchObject({ level: 'warn', msg: 'cannot reach postgres://u:***@h/db', url: 'postgres://u:***@h/db', error: 'at postgres://u:***@h/db', n: '5' });
  });

  it('redacts nested fields too, and never throws on a nested BigInt or Error', () => {
    const lines: string[] = [];
    const log = createLogger('debug', (l) => lines.push(l));
    const cause = new Error('connect to postgres://u:p@ss@h/db refused');
    log.info('nested', { conn: { url: 'postgres://u:p@ss@h/db', hosts: ['http://a:b@c@h2/'] }, tp: { offset: 5n }, errors: [cause] });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/p@ss|b@c/);
    expect(JSON.parse(lines[0])).toMatchObject({
      conn: { url: 'postgres://u:***@h/db', hosts: ['http://a:***@h2/'] },
      tp: { offset: '5' },
      errors: ['connect to postgres://u:***@h/db refused'],
    });
  });
});

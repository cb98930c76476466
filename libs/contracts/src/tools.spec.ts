import { submitExecutionSchema } from './execution';
import { toolAnswerSchema } from './tools';

describe('declaring tools on a submit', () => {
  const submit = (tools: unknown, extra: Record<string, unknown> = {}) => submitExecutionSchema.safeParse({ code: 'x', tools, ...extra });

  it('takes Python identifiers, with optional descriptions, and toolCallTimeoutMs', () => {
    expect(submit([{ name: 'read' }, { name: '_web_search2', description: 'searches' }], { toolCallTimeoutMs: 5_000 }).success).toBe(true);
  });

  it('refuses names Python cannot call as tool.<name>, duplicates, more than 64, unknown fields', () => {
    for (const name of ['', '1abc', 'a-b', 'a b', 'x'.repeat(65), 'ünïcode']) expect(submit([{ name }]).success).toBe(false);
    const twice = submit([{ name: 'a' }, { name: 'a' }]);
    expect(twice.success).toBe(false);
    expect(twice.error?.issues[0].path).toEqual(['tools', 1, 'name']);
    expect(submit(Array.from({ length: 65 }, (_, i) => ({ name: `t${i}` }))).success).toBe(false);
    expect(submit([{ name: 'a', schema: {} }]).success).toBe(false);
    expect(submit([{ name: 'a' }], { toolCallTimeoutMs: 0 }).success).toBe(false);
  });
});

describe('answers to a tool call', () => {
  it('are {ok: true, value} with any JSON value, or {ok: false, error} with a message', () => {
    for (const value of [null, 0, 'x', [1], { a: { b: [] } }]) expect(toolAnswerSchema.safeParse({ ok: true, value }).success).toBe(true);
    expect(toolAnswerSchema.safeParse({ ok: false, error: 'boom' }).success).toBe(true);
  });

  it('refuses anything else', () => {
    for (const body of [{ ok: true }, { ok: false }, { ok: false, error: '' }, { ok: 'true', value: 1 }, { ok: true, value: 1, extra: 1 }, { ok: false, value: 1 }]) {
      expect(toolAnswerSchema.safeParse(body).success).toBe(false);
    }
  });
});

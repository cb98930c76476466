import type { Stack } from './stack';

export type Answer = Awaited<ReturnType<Stack['request']>>;

/** The answer is an RFC 9457 problem document with this status (and a detail matching, if given). */
export function expectProblem(res: Pick<Answer, 'status' | 'headers' | 'json'>, status: number, detail?: RegExp): void {
  expect({ status: res.status, contentType: res.headers.get('content-type') }).toEqual({
    status,
    contentType: expect.stringMatching(/^application\/problem\+json/),
  });
  expect(res.json).toMatchObject({ type: expect.any(String), title: expect.any(String), status, detail: expect.any(String) });
  expect(res.json.type).toMatch(/^https?:\/\//);
  if (detail) expect(res.json.detail).toMatch(detail);
}

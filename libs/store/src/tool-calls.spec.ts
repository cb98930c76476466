import { canonicalJson } from './tool-calls';

describe('canonicalJson (what "the same answer again" means)', () => {
  it('gives the same text for the same answer whatever the order of its keys', () => {
    expect(canonicalJson({ ok: true, value: { b: 2, a: [1, { d: 4, c: 3 }] } })).toBe(canonicalJson({ value: { a: [1, { c: 3, d: 4 }], b: 2 }, ok: true }));
  });

  it('tells other answers apart: other values, array order, types', () => {
    expect(canonicalJson({ ok: true, value: [1, 2] })).not.toBe(canonicalJson({ ok: true, value: [2, 1] }));
    expect(canonicalJson({ ok: true, value: 1 })).not.toBe(canonicalJson({ ok: true, value: '1' }));
    expect(canonicalJson({ ok: true, value: null })).toBe('{"ok":true,"value":null}');
  });
});

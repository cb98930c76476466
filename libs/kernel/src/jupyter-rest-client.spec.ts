import { isConnectionFailure, kernelPathSegments } from './jupyter-rest-client';
import { JupyterApiError } from './kernel-errors';

describe('kernelPathSegments', () => {
  it('splits relative paths and drops empty and "." segments', () => {
    expect(kernelPathSegments('sessions/s-1')).toEqual(['sessions', 's-1']);
    expect(kernelPathSegments('./a//b/')).toEqual(['a', 'b']);
    expect(kernelPathSegments('')).toEqual([]);
  });

  it('rejects absolute paths, parent segments, backslashes and NUL', () => {
    for (const bad of ['/etc', 'a/../b', '..', 'a\\b', 'a\0b']) expect(() => kernelPathSegments(bad)).toThrow(TypeError);
  });
});

describe('isConnectionFailure', () => {
  it('recognises fetch network failures only', () => {
    expect(isConnectionFailure(new TypeError('fetch failed'))).toBe(true);
    expect(isConnectionFailure(new JupyterApiError('GET', '/x', 500, ''))).toBe(false);
    expect(isConnectionFailure(new Error('fetch failed'))).toBe(false);
  });
});

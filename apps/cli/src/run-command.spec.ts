import { apiTarget, parseArgs, UsageError } from './cli-args';
import { exitCodeOf } from './exit-codes';
import { noticeOf, parseRun } from './run-command';

describe('kernelfleet run arguments', () => {
  it('reads a file or standard input, the session and the options', () => {
    expect(parseRun(['job.py', '--session', 's1', '--timeout=5000', '--json', '--per-call'])).toMatchObject({
      source: 'job.py',
      sessionId: 's1',
      timeoutMs: 5000,
      json: true,
      perCall: true,
      reset: false,
    });
    expect(parseRun([])).toMatchObject({ source: '-', sessionId: undefined, timeoutMs: undefined, json: false });
    expect(parseRun(['-', '--owner', 'agent'])).toMatchObject({ source: '-', ownerId: 'agent' });
  });

  it.each([
    [['a.py', 'b.py'], /one file at most/],
    [['--timeout', '0'], /--timeout must be a positive integer/],
    [['--timeout', '5s'], /--timeout must be a positive integer/],
    [['--session'], /--session needs a value/],
    [['--json=yes'], /--json takes no value/],
    [['--session', 'a', '--session', 'b'], /--session given twice/],
    [['-x'], /unknown option "-x"/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseRun(argv)).toThrow(UsageError);
    expect(() => parseRun(argv)).toThrow(message);
  });

  it('takes the api from the options before the environment, and names what is missing', () => {
    const args = parseArgs(['--url', 'http://a:1'], ['url', 'key'], [], 'run');
    expect(apiTarget(args, { KERNELFLEET_URL: 'http://b:2', KERNELFLEET_API_KEY: 'k' }, 'run')).toEqual({ baseUrl: 'http://a:1', apiKey: 'k' });
    expect(() => apiTarget(parseArgs([], ['url', 'key'], [], 'run'), { KERNELFLEET_API_KEY: 'k' }, 'run')).toThrow(/KERNELFLEET_URL/);
    expect(() => apiTarget(args, {}, 'run')).toThrow(/KERNELFLEET_API_KEY/);
    expect(() => apiTarget(parseArgs(['--url', 'ftp://x'], ['url', 'key'], [], 'run'), { KERNELFLEET_API_KEY: 'k' }, 'run')).toThrow(/not an http/);
  });
});

describe('kernelfleet run exit codes and notices', () => {
  it('exits as the code did, 124 on a timeout and 130 when cancelled', () => {
    expect([exitCodeOf('completed'), exitCodeOf('failed'), exitCodeOf('timed_out'), exitCodeOf('cancelled'), exitCodeOf('outcome_unknown')]).toEqual([0, 1, 124, 130, 1]);
  });

  const execution = (status: string, output: string, extra: object = {}) =>
    ({ status, phase: 'run', result: { output, stdinRequested: false }, ...extra }) as never;

  it('repeats kernelfleet notices on stderr, never a program line that looks like one', () => {
    expect(noticeOf(execution('timed_out', '[eval cell timed out after 2s; …]\npartial\n'))).toBe('[eval cell timed out after 2s; …]');
    expect(noticeOf(execution('failed', '[Kernel requested stdin; interactive input is not supported.]\n', { result: { output: '[Kernel requested stdin; interactive input is not supported.]\n', stdinRequested: true } }))).toMatch(/stdin/);
    expect(noticeOf(execution('completed', '[1, 2, 3]\n'))).toBeUndefined();
    expect(noticeOf(execution('failed', '[1, 2]\nTraceback …\n'))).toBeUndefined();
  });

  it('repeats why code that never ran did not run, a full fleet included', () => {
    const full = 'Command timed out: no kernel capacity in the fleet (2 of 2 session kernels in use on 1 worker, none idle for 60 s to make room)';
    expect(noticeOf(execution('timed_out', full, { phase: 'queue' }))).toBe(full);
    expect(noticeOf(execution('timed_out', 'Command timed out', { phase: 'queue' }))).toBe('Command timed out');
    expect(noticeOf(execution('cancelled', '', { phase: 'queue' }))).toBeUndefined();
  });
});

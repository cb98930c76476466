import { UsageError } from './cli-args';
import { parseFiles } from './files';

describe('kernelfleet files arguments', () => {
  it('reads put, with REMOTE defaulting to LOCAL’s name, or put into a folder when REMOTE ends in /', () => {
    expect(parseFiles(['put', 's1', 'data/x.csv', 'in/x.csv', '--timeout', '60000'])).toMatchObject({ verb: 'put', sessionId: 's1', local: 'data/x.csv', remote: 'in/x.csv', timeoutMs: 60000 });
    expect(parseFiles(['put', 's1', '../elsewhere/x.csv'])).toMatchObject({ local: '../elsewhere/x.csv', remote: 'x.csv' });
    expect(parseFiles(['put', 's1', 'x.csv', 'in/'])).toMatchObject({ remote: 'in/x.csv' });
    expect(parseFiles(['put', 's1', '-', 'notes.txt'])).toMatchObject({ local: '-', remote: 'notes.txt' });
  });

  it('reads get to a file or to standard output, ls with and without a prefix, rm', () => {
    expect(parseFiles(['get', 's1', 'out/r.json', 'r.json'])).toMatchObject({ verb: 'get', remote: 'out/r.json', local: 'r.json' });
    expect(parseFiles(['get', 's1', 'out/r.json'])).toMatchObject({ local: '-' });
    expect(parseFiles(['get', 's1', 'out/r.json', '-'])).toMatchObject({ local: '-' });
    expect(parseFiles(['ls', 's1'])).toMatchObject({ verb: 'ls', sessionId: 's1', prefix: undefined });
    expect(parseFiles(['ls', 's1', 'out/'])).toMatchObject({ prefix: 'out/' });
    expect(parseFiles(['rm', 's1', 'out/'])).toMatchObject({ verb: 'rm', remote: 'out' });
  });

  it('reads push and pull, . being the session’s folder', () => {
    expect(parseFiles(['push', 's1', './project'])).toMatchObject({ verb: 'push', localDir: './project', remoteDir: '' });
    expect(parseFiles(['push', 's1', 'project', 'work/in/'])).toMatchObject({ remoteDir: 'work/in' });
    expect(parseFiles(['pull', 's1', '.', 'here'])).toMatchObject({ verb: 'pull', remoteDir: '', localDir: 'here' });
    expect(parseFiles(['pull', 's1', 'results', 'here', '--url', 'http://a:1'])).toMatchObject({ remoteDir: 'results' });
  });

  it('takes the api from --url and --key before the environment', () => {
    const parsed = parseFiles(['ls', 's1', '--url=http://a:1', '--key', 'k1']);
    expect(parsed.target({ KERNELFLEET_URL: 'http://b:2', KERNELFLEET_API_KEY: 'k2' })).toEqual({ baseUrl: 'http://a:1', apiKey: 'k1' });
    expect(() => parseFiles(['ls', 's1']).target({})).toThrow(/KERNELFLEET_URL/);
  });

  it.each([
    [[], /missing command/],
    [['cp', 's1', 'a'], /unknown command "cp"/],
    [['put', 's1'], /put: takes SESSION LOCAL \[REMOTE\], got 1/],
    [['put', 's1', 'a', 'b', 'c'], /got 4/],
    [['put', 's1', '-'], /standard input has no name/],
    [['put', 's1', 'x', '../x'], /"..\/x" is not a path in the session: it has a ".." segment/],
    [['put', 's1', 'x', '/etc/x'], /is absolute/],
    [['get', 's1', 'a//b'], /empty segment/],
    [['get', 's1'], /get: takes SESSION REMOTE \[LOCAL\]/],
    [['rm', 's1', '.'], /has a "." segment/],
    [['rm', 's1', 'a', 'b'], /rm: takes SESSION REMOTE, got 3/],
    [['pull', 's1', 'results'], /pull: takes SESSION REMOTEDIR LOCALDIR/],
    [['pull', 's1', '../up', 'here'], /".." segment/],
    [['push', 's1', 'dir', 'a/../b'], /".." segment/],
    [['ls', 'no/such/id'], /"no\/such\/id" is not a session id/],
    [['ls', 's1', '--timeout', '0'], /--timeout must be a positive integer/],
    [['ls', 's1', '--json'], /unknown option "--json"/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseFiles(argv)).toThrow(UsageError);
    expect(() => parseFiles(argv)).toThrow(message);
  });
});

import { parseKeysCommand, UsageError } from './keys-command';

describe('keys CLI arguments', () => {
  it('reads create with and without a label', () => {
    expect(parseKeysCommand(['create', 'acme'])).toEqual({ command: 'create', tenant: 'acme', label: '' });
    expect(parseKeysCommand(['create', 'acme', '--label', 'ci runner'])).toEqual({ command: 'create', tenant: 'acme', label: 'ci runner' });
    expect(parseKeysCommand(['create', '--label=nightly', 'acme'])).toEqual({ command: 'create', tenant: 'acme', label: 'nightly' });
  });

  it('reads list with and without a tenant, revoke and help', () => {
    expect(parseKeysCommand(['list'])).toEqual({ command: 'list' });
    expect(parseKeysCommand(['list', 'globex'])).toEqual({ command: 'list', tenant: 'globex' });
    expect(parseKeysCommand(['revoke', '0123456789abcdef'])).toEqual({ command: 'revoke', keyId: '0123456789abcdef' });
    expect(parseKeysCommand(['--help'])).toEqual({ command: 'help' });
  });

  it.each([
    [[], /missing command/],
    [['rotate'], /unknown command "rotate"/],
    [['create'], /create: missing <tenant>/],
    [['create', 'acme/evil'], /not a tenant name/],
    [['create', 'x'.repeat(65)], /not a tenant name/],
    [['create', 'acme', 'globex'], /unexpected argument "globex"/],
    [['create', 'acme', '--label'], /--label needs a value/],
    [['create', 'acme', '--label', 'a', '--label', 'b'], /--label given twice/],
    [['create', 'acme', '--label', 'x'.repeat(101)], /at most 100 characters/],
    [['create', 'acme', '--label', 'bell\u0007'], /no control characters/],
    [['create', 'acme', '--lable', 'x'], /unknown option "--lable"/],
    [['list', 'a b'], /not a tenant name/],
    [['list', '--all'], /unknown option/],
    [['list', 'acme', 'globex'], /unexpected argument/],
    [['revoke'], /missing <keyId>/],
    [['revoke', 'kf_0123456789abcdef_secret'], /not a key id/],
    [['revoke', '0123456789ABCDEF'], /not a key id/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseKeysCommand(argv)).toThrow(UsageError);
    expect(() => parseKeysCommand(argv)).toThrow(message);
  });
});

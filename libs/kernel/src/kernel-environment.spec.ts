import { FORCED_KERNEL_VARIABLES, kernelEnvironment } from './kernel-environment';

describe('kernelEnvironment', () => {
  const host: NodeJS.ProcessEnv = {
    PATH: '/venv/bin:/usr/bin',
    HOME: '/home/kf',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    LC_CTYPE: 'en_US.UTF-8',
    TZ: 'UTC',
    VIRTUAL_ENV: '/venv',
    REDIS_URL: 'redis://secret@host:6379',
    OPENAI_API_KEY: 'sk-123',
    KF_SECRET_TOKEN: 'shh',
    PYTHONPATH: '/srv/app',
    JUPYTER_TOKEN: 'tok',
    MPLBACKEND: 'Agg',
    PYTHONUNBUFFERED: '0',
    UNDEFINED_ONE: undefined,
  };

  it('keeps allowlisted variables and locale categories', () => {
    const env = kernelEnvironment(host);
    expect(env).toMatchObject({
      PATH: '/venv/bin:/usr/bin',
      HOME: '/home/kf',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      LC_CTYPE: 'en_US.UTF-8',
      TZ: 'UTC',
      VIRTUAL_ENV: '/venv',
    });
  });

  it('drops secrets, PYTHONPATH, JUPYTER_* and unknown variables', () => {
    const env = kernelEnvironment(host);
    for (const name of ['REDIS_URL', 'OPENAI_API_KEY', 'KF_SECRET_TOKEN', 'PYTHONPATH', 'JUPYTER_TOKEN', 'UNDEFINED_ONE']) {
      expect(env).not.toHaveProperty(name);
    }
  });

  it('forces unbuffered UTF-8 stdio and the inline matplotlib backend', () => {
    const env = kernelEnvironment(host, { PYTHONUNBUFFERED: '0', MPLBACKEND: 'Agg' });
    expect(env.PYTHONUNBUFFERED).toBe('1');
    expect(env.PYTHONIOENCODING).toBe('utf-8');
    expect(env.MPLBACKEND).toBe(FORCED_KERNEL_VARIABLES.MPLBACKEND);
  });

  it('adds explicit extras as given', () => {
    expect(kernelEnvironment(host, { PYTHONPATH: '/opt/lib', FOO: 'bar' })).toMatchObject({ PYTHONPATH: '/opt/lib', FOO: 'bar' });
  });

  it('provides a PATH when the host has none', () => {
    expect(kernelEnvironment({}).PATH).toBe('/usr/local/bin:/usr/bin:/bin');
  });

  it('rejects invalid extra names and NUL values', () => {
    expect(() => kernelEnvironment({}, { 'A=B': 'x' })).toThrow(TypeError);
    expect(() => kernelEnvironment({}, { A: 'x\0y' })).toThrow(TypeError);
  });

  it('does not modify its input', () => {
    const copy = { ...host };
    kernelEnvironment(host, { X: '1' });
    expect(host).toEqual(copy);
  });
});

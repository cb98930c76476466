import { sessionIdForFolder, workingFolder } from './session-id';
import { ID_PATTERN } from './types';

/** The session id `executePython` derives from a folder when it is given none. */
describe('sessionIdForFolder', () => {
  const folders = [
    '/home/ada/project',
    '/',
    'C:\\Users\\ada\\project',
    'C:\\',
    '/srv/my project (copy)',
    '/srv/проект',
    '/srv/..hidden',
    `/srv/${'x'.repeat(300)}`,
    '/srv/a:b.c_d-e',
    '',
  ];

  it.each(folders)('is a valid session id for %j', (folder) => {
    const id = sessionIdForFolder(folder);
    expect(id).toMatch(ID_PATTERN);
    expect(id).toMatch(/-[0-9a-f]{8}$/);
  });

  it('reads as the folder’s name, made safe and at most 48 characters', () => {
    expect(sessionIdForFolder('/home/ada/project')).toMatch(/^project-[0-9a-f]{8}$/);
    expect(sessionIdForFolder('C:\\Users\\ada\\project')).toMatch(/^project-[0-9a-f]{8}$/);
    expect(sessionIdForFolder('/srv/my project (copy)')).toMatch(/^my-project-copy-[0-9a-f]{8}$/);
    expect(sessionIdForFolder(`/srv/${'x'.repeat(300)}`)).toBe(`${'x'.repeat(48)}-${sessionIdForFolder(`/srv/${'x'.repeat(300)}`).slice(-8)}`);
    expect(sessionIdForFolder('/')).toMatch(/^root-[0-9a-f]{8}$/);
    expect(sessionIdForFolder('/srv/проект')).toMatch(/^root-[0-9a-f]{8}$/);
  });

  it('is stable: the same folder gives the same id, with or without a trailing separator', () => {
    expect(sessionIdForFolder('/home/ada/project')).toBe(sessionIdForFolder('/home/ada/project'));
    expect(sessionIdForFolder('/home/ada/project/')).toBe(sessionIdForFolder('/home/ada/project'));
    expect(sessionIdForFolder('/home/ada/project//')).toBe(sessionIdForFolder('/home/ada/project'));
    expect(sessionIdForFolder('C:\\work\\')).toBe(sessionIdForFolder('C:\\work'));
    // Pinned: a client upgrade must not move every user to new sessions (new kernels, globals lost).
    expect(sessionIdForFolder('/home/ada/project')).toBe('project-320753cc');
  });

  it('tells apart folders of the same name at different paths', () => {
    const ids = ['/home/ada/project', '/home/bob/project', '/tmp/project', '/project', 'project'].map(sessionIdForFolder);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id.startsWith('project-')).toBe(true);
  });

  it('gives the root a fixed id of its own', () => {
    expect(sessionIdForFolder('/')).toBe(sessionIdForFolder('/'));
    expect(sessionIdForFolder('/')).not.toBe(sessionIdForFolder('/root'));
  });

  it('is derived from the process’s working folder in Node', () => {
    expect(workingFolder()).toBe(process.cwd());
  });
});

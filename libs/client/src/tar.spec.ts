import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, linkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTar, TarError, writeTar, type TarEntry } from './tar';

/**
 * The ustar writer and reader: a round trip through odd piece sizes, and both directions with
 * the system's tar (GNU tar), which is the judge of what a tar archive is.
 */

const encoder = new TextEncoder();

/** Deterministic bytes, so a failure names the same content each run. */
function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function concat(pieces: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const piece of pieces) parts.push(piece);
  return new Uint8Array(Buffer.concat(parts));
}

/** `data` cut into pieces of the given sizes, in turn, to cross every boundary the reader has. */
async function* piecesOf(data: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length];
    yield data.slice(at, at + size);
    at += size;
  }
}

/** What an archive holds, bodies read: `{path: 'folder'}` or `{path: content}`. */
async function contentsOf(archive: AsyncIterable<Uint8Array>): Promise<Record<string, string | Uint8Array>> {
  const out: Record<string, string | Uint8Array> = {};
  for await (const entry of readTar(archive)) {
    out[entry.path] = entry.type === 'folder' ? 'folder' : await concat(entry.body as AsyncIterable<Uint8Array>);
  }
  return out;
}

const LONG_NAME = `${'deep/'.repeat(12)}ünïcode-${'n'.repeat(80)}.txt`;
const BIG = bytesOf(30_011, 7);

function sampleEntries(): TarEntry[] {
  return [
    { type: 'folder', path: 'data' },
    { type: 'folder', path: 'data/nested' },
    { type: 'file', path: 'data/nested/big.bin', size: BIG.length, body: piecesOf(BIG, [4096, 1, 777]) },
    { type: 'file', path: 'data/empty.txt', size: 0, body: [] },
    { type: 'file', path: LONG_NAME, size: 5, body: [encoder.encode('long\n')] },
    { type: 'folder', path: 'void' },
  ];
}

const EXPECTED = {
  data: 'folder',
  'data/nested': 'folder',
  'data/nested/big.bin': BIG,
  'data/empty.txt': new Uint8Array(0),
  [LONG_NAME]: encoder.encode('long\n'),
  void: 'folder',
};

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'kf-tar-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const tar = (args: string[], cwd = dir) => execFileSync('tar', args, { cwd, encoding: 'utf8' });

describe('writeTar and readTar', () => {
  it('round-trip files, an empty file, a name over 100 bytes and nested folders, read in pieces of any size', async () => {
    expect(encoder.encode(LONG_NAME).length).toBeGreaterThan(100);
    const archive = await concat(writeTar(sampleEntries()));
    expect(archive.length % 512).toBe(0);
    for (const sizes of [[archive.length], [1], [7], [511, 513, 3], [30_000]]) {
      expect(await contentsOf(piecesOf(archive, sizes))).toEqual(EXPECTED);
    }
  });

  it('skips a body left unread, and one read halfway', async () => {
    const archive = await concat(writeTar(sampleEntries()));
    const seen: string[] = [];
    for await (const entry of readTar(piecesOf(archive, [1000]))) {
      seen.push(entry.path);
      if (entry.type === 'file' && entry.size > 0 && entry.path.endsWith('.bin')) {
        for await (const piece of entry.body) if (piece.length) break;
      }
    }
    expect(seen).toEqual(Object.keys(EXPECTED));
  });

  it('reads a web ReadableStream as well as an async iterable', async () => {
    const archive = await concat(writeTar(sampleEntries()));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(archive.slice(0, 1234));
        controller.enqueue(archive.slice(1234));
        controller.close();
      },
    });
    expect(await contentsOf(stream as unknown as AsyncIterable<Uint8Array>)).toEqual(EXPECTED);
  });

  it('fails the archive when a file yields more or fewer bytes than its size (it changed while packed)', async () => {
    const more = writeTar([{ type: 'file', path: 'a', size: 3, body: [encoder.encode('abcd')] }]);
    await expect(concat(more)).rejects.toThrow(/a: more than its 3 bytes/);
    const fewer = writeTar([{ type: 'file', path: 'a', size: 3, body: [encoder.encode('ab')] }]);
    await expect(concat(fewer)).rejects.toThrow(/a: 2 bytes instead of 3/);
  });

  it('refuses to write a path that leaves its folder', async () => {
    await expect(concat(writeTar([{ type: 'folder', path: '../up' }]))).rejects.toThrow(TarError);
    await expect(concat(writeTar([{ type: 'folder', path: '/abs' }]))).rejects.toThrow(/absolute/);
  });

  it('refuses a damaged header and an archive cut short', async () => {
    const archive = await concat(writeTar(sampleEntries()));
    const damaged = archive.slice();
    damaged[3] ^= 0xff;
    await expect(contentsOf(piecesOf(damaged, [512]))).rejects.toThrow(/checksum/);
    await expect(contentsOf(piecesOf(archive.slice(0, 512 * 3 + 100), [512]))).rejects.toThrow(/ends in the middle/);
  });
});

describe('with the system tar', () => {
  it('GNU tar lists and extracts what writeTar made, long name included', async () => {
    writeFileSync(join(dir, 'ours.tar'), await concat(writeTar(sampleEntries())));
    const listing = tar(['-tvf', 'ours.tar']);
    const names = tar(['-tf', 'ours.tar']).split('\n').filter(Boolean);
    expect(names).toEqual(['data/', 'data/nested/', 'data/nested/big.bin', 'data/empty.txt', LONG_NAME, 'void/']);
    expect(listing).toMatch(/^drwxr-xr-x .* data\/$/m);
    expect(listing).toMatch(/^-rw-r--r-- .* 30011 .* data\/nested\/big\.bin$/m);

    mkdirSync(join(dir, 'out'));
    tar(['-xf', '../ours.tar'], join(dir, 'out'));
    expect(readFileSync(join(dir, 'out', 'data', 'nested', 'big.bin'))).toEqual(Buffer.from(BIG));
    expect(readFileSync(join(dir, 'out', 'data', 'empty.txt'))).toHaveLength(0);
    expect(readFileSync(join(dir, 'out', LONG_NAME), 'utf8')).toBe('long\n');
    expect(tar(['-tf', '../ours.tar'], join(dir, 'out'))).toContain('void/');
  });

  /** A tree of files and folders under dir/tree (the long path is within ustar's 255 bytes, split by its prefix). */
  function makeTree(): Record<string, string | Uint8Array> {
    const long = `${'folder-with-a-long-name/'.repeat(5)}${'f'.repeat(60)}.txt`;
    const files: Record<string, Uint8Array> = { 'a.txt': encoder.encode('a\n'), 'sub/empty': new Uint8Array(0), 'sub/deeper/b.bin': bytesOf(70_000, 3), [long]: encoder.encode('far\n') };
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(dir, 'tree', path, '..'), { recursive: true });
      writeFileSync(join(dir, 'tree', path), content);
    }
    mkdirSync(join(dir, 'tree', 'hollow'));
    const folders = ['sub', 'sub/deeper', 'hollow', ...long.split('/').slice(0, -1).map((_, i, all) => all.slice(0, i + 1).join('/'))];
    return { ...Object.fromEntries(folders.map((f) => [f, 'folder'])), ...files };
  }

  it.each(['gnu', 'pax', 'ustar'])('readTar takes what GNU tar makes (--format=%s), its ./ prefix dropped', async (format) => {
    const expected = makeTree();
    tar(['-cf', 'theirs.tar', `--format=${format}`, '-C', 'tree', '.']);
    expect(await contentsOf(piecesOf(readFileSync(join(dir, 'theirs.tar')), [4096]))).toEqual(expected);
  });

  it('readTar refuses a symbolic link and a hard link in an archive', async () => {
    makeTree();
    symlinkSync('a.txt', join(dir, 'tree', 'soft'));
    tar(['-cf', 'soft.tar', '-C', 'tree', 'a.txt', 'soft']);
    await expect(contentsOf(piecesOf(readFileSync(join(dir, 'soft.tar')), [512]))).rejects.toThrow(/"soft" is a link: links are not extracted/);

    linkSync(join(dir, 'tree', 'a.txt'), join(dir, 'tree', 'hard'));
    tar(['-cf', 'hard.tar', '-C', 'tree', 'a.txt', 'hard']);
    await expect(contentsOf(piecesOf(readFileSync(join(dir, 'hard.tar')), [512]))).rejects.toThrow(/"hard" is a link/);
  });

  it('readTar refuses absolute members and members that go up with ..', async () => {
    makeTree();
    tar(['-cPf', 'absolute.tar', join(dir, 'tree', 'a.txt')]);
    await expect(contentsOf(piecesOf(readFileSync(join(dir, 'absolute.tar')), [512]))).rejects.toThrow(/is an absolute path/);
    tar(['-cPf', '../up.tar', '../tree/a.txt'], join(dir, 'tree'));
    await expect(contentsOf(piecesOf(readFileSync(join(dir, 'up.tar')), [512]))).rejects.toThrow(/goes up out of its folder/);
  });

  it('readTar refuses other kinds of members (a FIFO)', async () => {
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    tar(['-cf', 'fifo.tar', 'pipe']);
    await expect(contentsOf(piecesOf(readFileSync(join(dir, 'fifo.tar')), [512]))).rejects.toThrow(/"pipe" is of type "6"/);
  });
});

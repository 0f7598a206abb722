import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ParseError } from '../../tasks/parsers/errors.js';
import { checkFseqSize, expectedFseqSize, parseFseqHeader, type FseqHeader } from '../../tasks/parsers/fseq.js';
import { buildEseq, buildFseqV1, buildFseqV2, buildPng } from '../support/fixture-builders.js';

const fixture = (name: string): Buffer => readFileSync(fileURLToPath(new URL(`../fixtures/fseq/${name}`, import.meta.url)));

/** What a caller does: pass the first 64 KiB + a few bytes, then check the full size. */
function parseFile(file: Uint8Array): { header: FseqHeader; sizeError: ParseError | null } {
  const header = parseFseqHeader(file.subarray(0, 65536 + 16), { fileSize: file.length });
  return { header, sizeError: checkFseqSize(header, file.length) };
}

function parseError(fn: () => unknown): ParseError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ParseError);
    return err as ParseError;
  }
  throw new Error('expected a ParseError, nothing was thrown');
}

describe('FSEQ v1 real fixtures', () => {
  it('reads v1.0 with an mf header exactly', () => {
    const file = fixture('v1.0_mf_nkaminski_BBK_Merry_Christmas_Baby.fseq');
    expect(file.length).toBe(94988);
    const { header, sizeError } = parseFile(file);
    expect(sizeError).toBeNull();
    expect(header).toMatchObject({
      magic: 'PSEQ',
      version: '1.0',
      majorVersion: 1,
      minorVersion: 0,
      channelDataOffset: 108,
      headerLength: 28,
      channelCount: 20,
      frameCount: 4744,
      stepTimeMs: 50,
      fps: 20,
      durationMs: 237200,
      compression: 'none',
      blockCount: 0,
      sparseRanges: [],
      uniqueId: null,
      mediaFile: 'BBK_Merry_Christmas_Baby.ogg',
      producer: null,
      extendedData: [],
    });
    // 80-byte entry: 4-byte prefix + 75-character path + NUL.
    expect(header.variableHeaders).toEqual([{ code: 'mf', length: 76, extended: false }]);
    expect(expectedFseqSize(header)).toBe(108 + 4744 * 20);
    expect(header.warnings).toEqual([]);
  });

  it('reads v1.0 without variable headers exactly', () => {
    const file = fixture('v1.0_novh_nkaminski_testseq.fseq');
    expect(file.length).toBe(91228);
    const { header, sizeError } = parseFile(file);
    expect(sizeError).toBeNull();
    expect(header).toMatchObject({
      version: '1.0',
      channelDataOffset: 28,
      headerLength: 28,
      channelCount: 152,
      frameCount: 600,
      stepTimeMs: 50,
      durationMs: 30000,
      mediaFile: null,
      producer: null,
      variableHeaders: [],
    });
    expect(expectedFseqSize(header)).toBe(91228);
  });

  it('flags a real v1 file that lost its last bytes', () => {
    const file = fixture('v1.0_novh_nkaminski_testseq.fseq').subarray(0, 91000);
    const { sizeError } = parseFile(file);
    expect(sizeError?.code).toBe('FSEQ_TRUNCATED');
    expect(sizeError?.message).toContain('91000');
    expect(sizeError?.message).toContain('91228');
  });
});

describe('FSEQ v1 synthetic', () => {
  it('accepts the older FSEQ magic and a Windows media path', () => {
    const file = buildFseqV1({ channels: 3, frames: 10, stepMs: 25, magic: 'FSEQ', mediaFile: 'C:\\Shows\\2024\\Jingle Bells.mp3' });
    const { header, sizeError } = parseFile(file);
    expect(sizeError).toBeNull();
    expect(header).toMatchObject({ magic: 'FSEQ', version: '1.0', fps: 40, durationMs: 250, mediaFile: 'Jingle Bells.mp3' });
  });
});

describe('FSEQ v2 synthetic', () => {
  it('reads an uncompressed 2.0 file', () => {
    const file = buildFseqV2({ channels: 512, frames: 40, stepMs: 25, uniqueId: 18446744073709551615n });
    const { header, sizeError } = parseFile(file);
    expect(sizeError).toBeNull();
    expect(header).toMatchObject({
      magic: 'PSEQ',
      version: '2.0',
      majorVersion: 2,
      minorVersion: 0,
      channelCount: 512,
      frameCount: 40,
      stepTimeMs: 25,
      fps: 40,
      durationMs: 1000,
      compression: 'none',
      blockCount: 0,
      blockSlots: 0,
      compressedDataLength: null,
      sparseRanges: [],
      uniqueId: '18446744073709551615',
      mediaFile: null,
      producer: null,
      variableHeaders: [],
      channelDataOffset: 32,
      headerLength: 32,
    });
    expect(expectedFseqSize(header)).toBe(32 + 40 * 512);
  });

  it('reads mf and sp variable headers', () => {
    const file = buildFseqV2({
      channels: 30,
      frames: 20,
      variableHeaders: [
        { code: 'mf', value: '/home/show/audio/Wizards in Winter.mp3' },
        { code: 'sp', value: 'xLights Macintosh 2024.05' },
        { code: 'zz', value: new Uint8Array([1, 2, 3]) },
      ],
    });
    const { header, sizeError } = parseFile(file);
    expect(sizeError).toBeNull();
    expect(header.mediaFile).toBe('Wizards in Winter.mp3');
    expect(header.producer).toBe('xLights Macintosh 2024.05');
    expect(header.variableHeaders).toEqual([
      { code: 'mf', length: 39, extended: false }, // 38 characters + NUL
      { code: 'sp', length: 26, extended: false },
      { code: 'zz', length: 3, extended: false },
    ]);
    expect(header.channelDataOffset % 4).toBe(0);
  });

  it('strips the NUL and anything after it from strings', () => {
    const value = Buffer.concat([Buffer.from('D:\\music\\song.ogg'), Buffer.from([0, 0x41, 0x42])]);
    const { header } = parseFile(buildFseqV2({ channels: 3, frames: 3, variableHeaders: [{ code: 'mf', value }] }));
    expect(header.mediaFile).toBe('song.ogg');
  });

  for (const compression of ['zstd', 'zlib'] as const) {
    it(`reads a ${compression} file with 300 blocks (12-bit block count)`, () => {
      const file = buildFseqV2({ channels: 100, frames: 600, compression, blocks: 300 });
      expect(file[20]! >> 4).toBe(1); // upper nibble used: 300 = 0x12C
      const { header, sizeError } = parseFile(file);
      expect(sizeError).toBeNull();
      expect(header).toMatchObject({ version: '2.1', compression, blockCount: 300, blockSlots: 300 });
      expect(header.compressedDataLength).toBe(file.length - header.channelDataOffset);
    });
  }

  it('reads the maximum 4095 blocks', () => {
    const file = buildFseqV2({ channels: 4, frames: 5000, compression: 'zstd', blocks: 4095, blockBytes: 2 });
    const { header, sizeError } = parseFile(file);
    expect(sizeError).toBeNull();
    expect(header.blockCount).toBe(4095);
    expect(header.headerLength).toBe(32 + 4095 * 8);
    expect(expectedFseqSize(header)).toBe(file.length);
  });

  it('does not count trailing unused block slots', () => {
    const file = buildFseqV2({ channels: 10, frames: 100, compression: 'zstd', blocks: 7, blockSlots: 20 });
    const { header, sizeError } = parseFile(file);
    expect(sizeError).toBeNull();
    expect(header.blockCount).toBe(7);
    expect(header.blockSlots).toBe(20);
    expect(header.warnings).toEqual([]);
  });

  it('reads sparse ranges', () => {
    const sparseRanges = [
      { start: 0, count: 30 },
      { start: 5000, count: 50 },
      { start: 16_000_000, count: 20 },
    ];
    const file = buildFseqV2({ channels: 100, frames: 8, compression: 'zlib', blocks: 2, sparseRanges });
    const { header, sizeError } = parseFile(file);
    expect(sizeError).toBeNull();
    expect(header.sparseRanges).toEqual(sparseRanges);
    expect(header.headerLength).toBe(32 + 2 * 8 + 3 * 6);
  });

  it('reads 2.2 ED extended-data pointers and includes their data in the size', () => {
    const xs = new Uint8Array(300).fill(7);
    const xn = new Uint8Array(45).fill(9);
    const file = buildFseqV2({
      channels: 12,
      frames: 50,
      compression: 'zstd',
      blocks: 3,
      variableHeaders: [{ code: 'sp', value: 'xLights 2026.01' }],
      extendedData: [
        { code: 'XS', payload: xs },
        { code: 'XN', payload: xn },
      ],
    });
    const { header, sizeError } = parseFile(file);
    expect(sizeError).toBeNull();
    expect(header.version).toBe('2.2');
    expect(header.producer).toBe('xLights 2026.01');
    const dataEnd = header.channelDataOffset + (header.compressedDataLength ?? 0);
    expect(header.extendedData).toEqual([
      { code: 'XS', offset: dataEnd, length: 300 },
      { code: 'XN', offset: dataEnd + 300, length: 45 },
    ]);
    expect(header.variableHeaders).toEqual([
      { code: 'sp', length: 16, extended: false },
      { code: 'XS', length: 300, extended: true },
      { code: 'XN', length: 45, extended: true },
    ]);
    expect(expectedFseqSize(header)).toBe(dataEnd + 345);
    // Without the extended data the file is short by exactly its length.
    const cut = file.subarray(0, dataEnd);
    expect(checkFseqSize(header, cut.length)?.code).toBe('FSEQ_TRUNCATED');
  });

  it('reads an uncompressed file with extended data', () => {
    const file = buildFseqV2({ channels: 6, frames: 4, extendedData: [{ code: 'XR', payload: new Uint8Array(10) }] });
    const { header, sizeError } = parseFile(file);
    expect(sizeError).toBeNull();
    expect(expectedFseqSize(header)).toBe(header.channelDataOffset + 24 + 10);
  });

  it('reads an ESEQ effect sequence using the file size', () => {
    const file = buildEseq({ channels: 150, frames: 33, startChannel: 1001, modelSize: 150 });
    const { header, sizeError } = parseFile(file);
    expect(sizeError).toBeNull();
    expect(header).toMatchObject({
      magic: 'ESEQ',
      channelCount: 150,
      frameCount: 33,
      stepTimeMs: 50,
      durationMs: 1650,
      channelDataOffset: 20,
      sparseRanges: [{ start: 1000, count: 150 }],
      eseq: { modelCount: 1, startChannel: 1001, modelSize: 150 },
    });
    expect(parseError(() => parseFseqHeader(file.subarray(0, 64))).code).toBe('FSEQ_ESEQ_SIZE_REQUIRED');
    expect(checkFseqSize(header, file.length + 7)?.code).toBe('FSEQ_SIZE_MISMATCH');
  });
});

describe('FSEQ malformed input', () => {
  const good = (): Buffer => buildFseqV2({ channels: 10, frames: 10, compression: 'zstd', blocks: 2 });

  it('rejects a header cut short', () => {
    const file = good();
    const e = parseError(() => parseFseqHeader(file.subarray(0, 20)));
    expect(e.code).toBe('FSEQ_TRUNCATED');
    expect(e.message).toMatch(/32 bytes but only 20/);
    const withVars = buildFseqV2({ channels: 2, frames: 2, variableHeaders: [{ code: 'mf', value: 'x'.repeat(200) }] });
    const e2 = parseError(() => parseFseqHeader(withVars.subarray(0, 100)));
    expect(e2.code).toBe('FSEQ_TRUNCATED');
    expect(e2.message).toContain('channel data starts at byte');
  });

  it('rejects a truncated body', () => {
    const file = buildFseqV2({ channels: 10, frames: 10, compression: 'zlib', blocks: 2, lie: { truncateBy: 5 } });
    const { sizeError } = parseFile(file);
    expect(sizeError?.code).toBe('FSEQ_TRUNCATED');
    expect(sizeError?.details).toMatchObject({ actual: file.length, expected: file.length + 5 });
    expect(sizeError?.message).toContain('5 bytes are missing');
  });

  it('rejects a body longer than the header describes', () => {
    const file = buildFseqV2({ channels: 10, frames: 10, lie: { appendBytes: 3 } });
    const { sizeError } = parseFile(file);
    expect(sizeError?.code).toBe('FSEQ_SIZE_MISMATCH');
    expect(sizeError?.message).toContain('3 more than');
  });

  it('rejects a lying frame count (uncompressed: size no longer matches)', () => {
    const file = buildFseqV2({ channels: 10, frames: 10, lie: { frameCount: 1_000_000 } });
    const { header, sizeError } = parseFile(file);
    expect(header.frameCount).toBe(1_000_000);
    expect(sizeError?.code).toBe('FSEQ_TRUNCATED');
  });

  it('rejects a lying block length', () => {
    const file = buildFseqV2({ channels: 10, frames: 10, compression: 'zstd', blocks: 2, lie: { block: { index: 1, length: 5 } } });
    expect(parseFile(file).sizeError?.code).toBe('FSEQ_SIZE_MISMATCH');
  });

  it('rejects a corrupt block index', () => {
    const unordered = buildFseqV2({ channels: 10, frames: 10, compression: 'zstd', blocks: 3, lie: { block: { index: 2, firstFrame: 1 } } });
    expect(parseError(() => parseFile(unordered)).code).toBe('FSEQ_BAD_BLOCK_INDEX');
    const notFromZero = buildFseqV2({ channels: 10, frames: 10, compression: 'zstd', blocks: 3, lie: { block: { index: 0, firstFrame: 4 } } });
    expect(parseError(() => parseFile(notFromZero)).message).toContain('instead of 0');
    const pastEnd = buildFseqV2({ channels: 10, frames: 10, compression: 'zstd', blocks: 3, lie: { block: { index: 2, firstFrame: 10 } } });
    expect(parseError(() => parseFile(pastEnd)).code).toBe('FSEQ_BAD_BLOCK_INDEX');
    const empty = buildFseqV2({ channels: 10, frames: 10, compression: 'zstd', blocks: 1, lie: { block: { index: 0, length: 0 } } });
    expect(parseError(() => parseFile(empty)).message).toContain('no used entries');
  });

  it('rejects a header-length field that disagrees with the tables', () => {
    const e = parseError(() => parseFile(buildFseqV2({ channels: 10, frames: 10, compression: 'zstd', blocks: 2, lie: { headerLength: 40 } })));
    expect(e.code).toBe('FSEQ_BAD_HEADER');
    expect(e.message).toContain('32 + 2×8 + 0×6 = 48');
  });

  it('rejects a channel data offset inside the fixed header', () => {
    expect(parseError(() => parseFile(buildFseqV2({ channels: 1, frames: 1, lie: { channelDataOffset: 16 } }))).code).toBe('FSEQ_BAD_HEADER');
    expect(parseError(() => parseFile(buildFseqV1({ channels: 1, frames: 1, lie: { channelDataOffset: 10 } }))).code).toBe('FSEQ_BAD_HEADER');
  });

  it('rejects sparse ranges that do not add up to the channel count', () => {
    const file = buildFseqV2({ channels: 40, frames: 2, sparseRanges: [{ start: 0, count: 30 }] });
    const e = parseError(() => parseFile(file));
    expect(e.code).toBe('FSEQ_BAD_SPARSE_RANGES');
    expect(e.message).toContain('30 channels but the header declares 40');
    const zero = buildFseqV2({ channels: 0 + 5, frames: 2, sparseRanges: [{ start: 0, count: 5 }, { start: 9, count: 0 }] });
    expect(parseError(() => parseFile(zero)).code).toBe('FSEQ_BAD_SPARSE_RANGES');
  });

  it('rejects variable-header lengths that would loop (0 and 2) or overrun', () => {
    for (const length of [0, 2, 3]) {
      const file = buildFseqV2({
        channels: 4,
        frames: 4,
        variableHeaders: [{ code: 'mf', value: 'song.mp3' }],
        lie: { variableHeaderLength: { index: 0, length } },
      });
      const started = Date.now();
      const e = parseError(() => parseFile(file));
      expect(Date.now() - started).toBeLessThan(1000);
      expect(e.code).toBe('FSEQ_BAD_VARIABLE_HEADER');
      expect(e.message).toContain(`declares length ${length}`);
    }
    const overrun = buildFseqV2({ channels: 4, frames: 4, variableHeaders: [{ code: 'sp', value: 'x' }], lie: { variableHeaderLength: { index: 0, length: 400 } } });
    const e = parseError(() => parseFile(overrun));
    expect(e.code).toBe('FSEQ_BAD_VARIABLE_HEADER');
    expect(e.message).toContain('running past the channel data offset');
  });

  it('rejects an ED entry of the wrong size or pointing into the header', () => {
    const file = buildFseqV2({ channels: 4, frames: 4, extendedData: [{ code: 'XS', payload: new Uint8Array(8) }] });
    const intoHeader = Buffer.from(file);
    const edAt = 32;
    intoHeader.writeBigUInt64LE(8n, edAt + 6);
    expect(parseError(() => parseFile(intoHeader)).code).toBe('FSEQ_BAD_EXTENDED_DATA');
    const wrongSize = buildFseqV2({ channels: 4, frames: 4, extendedData: [{ code: 'XS', payload: new Uint8Array(8) }], lie: { variableHeaderLength: { index: 0, length: 16 } } });
    expect(parseError(() => parseFile(wrongSize)).message).toContain('must be exactly 18');
    const intoData = Buffer.from(file);
    const { header } = parseFile(file);
    intoData.writeBigUInt64LE(BigInt(header.channelDataOffset + 1), edAt + 6);
    expect(parseFile(intoData).sizeError?.code).toBe('FSEQ_BAD_EXTENDED_DATA');
  });

  it('rejects zero channels, zero frames and a zero step time precisely', () => {
    expect(parseError(() => parseFile(buildFseqV2({ channels: 0, frames: 5 }))).code).toBe('FSEQ_ZERO_CHANNELS');
    expect(parseError(() => parseFile(buildFseqV2({ channels: 5, frames: 0 }))).code).toBe('FSEQ_ZERO_FRAMES');
    expect(parseError(() => parseFile(buildFseqV2({ channels: 5, frames: 5, stepMs: 0 }))).code).toBe('FSEQ_ZERO_STEP_TIME');
    expect(parseError(() => parseFile(buildFseqV1({ channels: 0, frames: 5 }))).code).toBe('FSEQ_ZERO_CHANNELS');
  });

  it('rejects an unknown compression type', () => {
    const e = parseError(() => parseFile(buildFseqV2({ channels: 5, frames: 5, lie: { compressionType: 3 } })));
    expect(e.code).toBe('FSEQ_UNSUPPORTED_COMPRESSION');
    expect(e.message).toContain('compression type 3');
  });

  it('rejects major version 3 and 0', () => {
    const e = parseError(() => parseFile(buildFseqV2({ channels: 5, frames: 5, lie: { majorVersion: 3 } })));
    expect(e.code).toBe('FSEQ_UNSUPPORTED_VERSION');
    expect(e.message).toContain('3.0');
    expect(parseError(() => parseFile(buildFseqV2({ channels: 5, frames: 5, lie: { majorVersion: 0 } }))).code).toBe('FSEQ_UNSUPPORTED_VERSION');
  });

  it('accepts a future 2.x minor with a warning', () => {
    const { header } = parseFile(buildFseqV2({ channels: 5, frames: 5, minor: 3 }));
    expect(header.version).toBe('2.3');
    expect(header.warnings[0]).toContain('newer than 2.2');
  });

  it('rejects garbage, other formats and empty input', () => {
    const garbage = Buffer.alloc(4096);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 131 + 17) & 0xff;
    expect(parseError(() => parseFseqHeader(garbage)).code).toBe('FSEQ_BAD_MAGIC');
    const png = parseError(() => parseFseqHeader(buildPng()));
    expect(png.code).toBe('FSEQ_BAD_MAGIC');
    expect(png.message).toContain('89 50 4e 47');
    expect(parseError(() => parseFseqHeader(new Uint8Array(0))).code).toBe('FSEQ_TRUNCATED');
    expect(parseError(() => parseFseqHeader(Buffer.from('PSEQ'))).code).toBe('FSEQ_TRUNCATED');
  });

  it('never throws anything but ParseError on random mutations', () => {
    const base = buildFseqV2({
      channels: 20,
      frames: 30,
      compression: 'zstd',
      blocks: 5,
      sparseRanges: [{ start: 10, count: 20 }],
      variableHeaders: [{ code: 'mf', value: 'a.mp3' }],
      extendedData: [{ code: 'XS', payload: new Uint8Array(4) }],
    });
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let round = 0; round < 3000; round++) {
      const file = Buffer.from(base.subarray(0, 1 + rand(base.length)));
      for (let k = 0; k < 1 + rand(4); k++) file[4 + rand(Math.max(1, Math.min(file.length, 160) - 4))] = rand(256);
      try {
        const h = parseFseqHeader(file, { fileSize: file.length });
        const err = checkFseqSize(h, file.length);
        if (err !== null) expect(err).toBeInstanceOf(ParseError);
      } catch (err) {
        expect(err).toBeInstanceOf(ParseError);
      }
    }
  });
});

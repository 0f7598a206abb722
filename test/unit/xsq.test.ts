import { describe, expect, it } from 'vitest';
import { ParseError } from '../../tasks/parsers/errors.js';
import { decodeRepeatedEntities, parseXsq, type ParseXsqOptions } from '../../tasks/parsers/xsq.js';
import { buildXmlBomb, buildXsq, chunked } from '../support/fixture-builders.js';

async function* once(data: string | Uint8Array): AsyncGenerator<string | Uint8Array> {
  yield data;
}

async function parseError(source: AsyncIterable<Uint8Array | string>, opts?: ParseXsqOptions): Promise<ParseError> {
  try {
    await parseXsq(source, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ParseError);
    return err as ParseError;
  }
  throw new Error('expected a ParseError, parseXsq resolved');
}

describe('parseXsq: counts and head', () => {
  it('counts every effect placement and nothing else', async () => {
    const { xml, expected } = buildXsq({ models: 4, timingTracks: 3, marksPerTrack: 7, effectsPerLayer: 5, effectDb: 6, palettes: 2 });
    const meta = await parseXsq(once(xml));
    expect(meta).toEqual(expected);
    // Spelled out: per model 5 (EffectLayer) + 2 (SubModelEffectLayer) + 1 (Strand) + 2 (Strand/Node).
    expect(meta.effectCount).toBe(4 * 10);
    expect(meta.modelCount).toBe(4); // DisplayElements' 5 model Elements are not counted
    expect(meta.timingTrackCount).toBe(3);
    expect(meta.timingMarkCount).toBe(21);
    expect(meta.effectDbCount).toBe(6);
    expect(meta.paletteCount).toBe(2);
    // A naive count of every <Effect> would be wrong:
    const naive = xml.match(/<Effect[\s>]/g)?.length ?? 0;
    expect(naive).toBe(40 + 21 + 6);
  });

  it('reads head fields, decoding text escaped more than once', async () => {
    const { xml, expected } = buildXsq({
      head: { song: 'Rock & Roll <Christmas> "Mix"', album: 'Greatest Hits', author: '  Jane  ' },
      doubleEscape: ['artist', 'song'],
    });
    expect(xml).toContain('Simon &amp;amp; Garfunkel');
    expect(xml).toContain('Rock &amp;amp; Roll &amp;lt;Christmas&amp;gt; &amp;quot;Mix&amp;quot;');
    const meta = await parseXsq(once(xml));
    expect(meta).toEqual(expected);
    expect(meta).toMatchObject({
      xlightsVersion: '2024.05',
      sequenceType: 'Media',
      sequenceTimingMs: 50,
      durationMs: 221306,
      mediaFile: 'Carol of the Bells.mp3',
      song: 'Rock & Roll <Christmas> "Mix"',
      artist: 'Simon & Garfunkel',
      album: 'Greatest Hits',
      author: 'Jane',
      fixedPointTiming: true,
    });
  });

  it('handles POSIX media paths, empty fields and second-based timing', async () => {
    const { xml } = buildXsq({
      head: { mediaFile: '/Users/show/xLights/Audio/Let It Go.m4a', artist: '', album: '   ', sequenceTiming: '25 ms', sequenceDuration: '30' },
      fixedPointTiming: false,
    });
    const meta = await parseXsq(once(xml));
    expect(meta).toMatchObject({ mediaFile: 'Let It Go.m4a', artist: null, album: null, sequenceTimingMs: 25, durationMs: 30000, fixedPointTiming: false });
  });

  it('decodes repeatedly but at most 5 rounds', () => {
    expect(decodeRepeatedEntities('a &amp;amp;amp; b')).toBe('a & b');
    expect(decodeRepeatedEntities('&#65;&#x42;&amp;#67;')).toBe('ABC');
    expect(decodeRepeatedEntities('&#0; &#xD800; &bogus;')).toBe('&#0; &#xD800; &bogus;');
    expect(decodeRepeatedEntities(`&${'amp;'.repeat(8)}lt;`)).toBe('&amp;amp;amp;lt;'); // 8 levels deep: 5 peeled, 3 left
  });

  it('gives the same result fed in 7-byte chunks (splitting multi-byte characters)', async () => {
    const { xml, expected } = buildXsq({ head: { song: 'Feliz Navidad — ¡Olé! 🎄', artist: 'Ελληνικά & 日本語' } });
    const whole = await parseXsq(once(xml));
    const pieces = await parseXsq(chunked(xml, 7));
    expect(pieces).toEqual(whole);
    expect(pieces).toEqual(expected);
    expect(pieces.song).toBe('Feliz Navidad — ¡Olé! 🎄');
    const asStrings = async function* (): AsyncGenerator<string> {
      for (let i = 0; i < xml.length; i += 7) yield xml.slice(i, i + 7);
    };
    expect(await parseXsq(asStrings())).toEqual(expected);
  });

  it('accepts a UTF-8 BOM', async () => {
    const { xml, expected } = buildXsq();
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(xml)]);
    expect(await parseXsq(once(bytes))).toEqual(expected);
  });
});

describe('parseXsq: hostile and wrong input', () => {
  it('rejects the billion-laughs DOCTYPE quickly and with bounded memory', async () => {
    const before = process.memoryUsage().heapUsed;
    const started = Date.now();
    const e = await parseError(once(buildXmlBomb()));
    expect(e.code).toBe('XML_DOCTYPE_FORBIDDEN');
    expect(Date.now() - started).toBeLessThan(500);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(50 * 1024 * 1024);
  });

  it('rejects an external-entity (XXE) DOCTYPE', async () => {
    const xxe = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xsequence><head><song>&e;</song></head></xsequence>';
    expect((await parseError(once(xxe))).code).toBe('XML_DOCTYPE_FORBIDDEN');
  });

  it('stops a huge DOCTYPE while it is still being read', async () => {
    async function* hugeDoctype(): AsyncGenerator<string> {
      yield '<?xml version="1.0"?><!DOCTYPE x [<!-- ';
      for (let i = 0; i < 10_000; i++) yield 'x'.repeat(1024); // 10 MB, never closed
    }
    const e = await parseError(hugeDoctype(), { maxTextBytes: 64 * 1024 });
    expect(e.code).toBe('XML_TOO_LARGE');
  });

  it('rejects XML whose root is not xsequence, naming the root', async () => {
    const e = await parseError(once('<?xml version="1.0"?><project><name>x</name></project>'));
    expect(e.code).toBe('XSQ_NOT_XLIGHTS');
    expect(e.message).toContain('<project>');
    const seq = await parseError(once('<sequence><head/></sequence>'));
    expect(seq.code).toBe('XSQ_NOT_XLIGHTS');
    expect(seq.message).toContain('<sequence>');
  });

  it('stops reading right after a wrong root', async () => {
    let yielded = 0;
    async function* endless(): AsyncGenerator<string> {
      yield '<rss version="2.0">';
      for (;;) {
        yielded++;
        yield '<item>x</item>';
      }
    }
    expect((await parseError(endless())).code).toBe('XSQ_NOT_XLIGHTS');
    expect(yielded).toBeLessThan(2);
  });

  it('reports malformed XML with line and column', async () => {
    const e = await parseError(once('<xsequence>\n  <head>\n    <song>x</sng>\n</xsequence>'));
    expect(e.code).toBe('XML_MALFORMED');
    expect(e.message).toMatch(/line 3, column \d+/);
    expect(e.details).toMatchObject({ line: 3 });
    expect((await parseError(once('<xsequence><head>'))).code).toBe('XML_MALFORMED');
    expect((await parseError(once('<xsequence a="1" a="2"/>'))).code).toBe('XML_MALFORMED');
    expect((await parseError(once('<xsequence>&undefined;</xsequence>'))).code).toBe('XML_MALFORMED');
  });

  it('rejects invalid UTF-8', async () => {
    const bytes = Buffer.concat([Buffer.from('<xsequence><head><song>'), Buffer.from([0xc3, 0x28]), Buffer.from('</song></head></xsequence>')]);
    const e = await parseError(once(bytes));
    expect(e.code).toBe('XML_MALFORMED');
    expect(e.message).toContain('UTF-8');
  });

  it('rejects empty input and documents without a root', async () => {
    expect((await parseError(once(''))).code).toBe('XML_EMPTY');
    expect((await parseError(once('<?xml version="1.0"?>\n<!-- nothing -->\n'))).code).toBe('XML_EMPTY');
  });

  it('rejects binary garbage as malformed', async () => {
    const bytes = Buffer.alloc(2048);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 37 + 11) & 0x7f;
    expect((await parseError(once(bytes))).code).toBe('XML_MALFORMED');
  });

  it('enforces maxBytes while streaming', async () => {
    const { xml } = buildXsq({ extraEffects: 2000 });
    const e = await parseError(chunked(xml, 4096), { maxBytes: 32 * 1024 });
    expect(e.code).toBe('XML_TOO_LARGE');
    expect(e.message).toContain('32768');
  });

  it('enforces maxTextBytes on text and attribute runs before they complete', async () => {
    async function* longText(): AsyncGenerator<string> {
      yield '<xsequence><EffectDB><Effect>';
      for (let i = 0; i < 1000; i++) yield 'E_SLIDER=1,'.repeat(1000); // ~11 MB of text
    }
    const started = Date.now();
    expect((await parseError(longText(), { maxTextBytes: 100_000 })).code).toBe('XML_TOO_LARGE');
    expect(Date.now() - started).toBeLessThan(2000);
    const attr = `<xsequence><head a="${'v'.repeat(300_000)}"/></xsequence>`;
    expect((await parseError(once(attr), { maxTextBytes: 100_000 })).code).toBe('XML_TOO_LARGE');
  });

  it('limits nesting depth', async () => {
    const deep = `<xsequence>${'<a>'.repeat(1000)}${'</a>'.repeat(1000)}</xsequence>`;
    const e = await parseError(once(deep));
    expect(e.code).toBe('XML_TOO_DEEP');
  });

  it('passes source errors through untouched', async () => {
    const boom = new Error('disk on fire');
    async function* failing(): AsyncGenerator<string> {
      yield '<xsequence>';
      throw boom;
    }
    await expect(parseXsq(failing())).rejects.toBe(boom);
  });
});

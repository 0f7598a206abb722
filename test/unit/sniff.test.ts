import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { declaredKindMatches, mimeForFormat, sniff, type Kind } from '../../tasks/parsers/sniff.js';
import { buildEseq, buildFseqV1, buildFseqV2, buildPng, buildXmlBomb, buildXsq } from '../support/fixture-builders.js';

const HEAD = 64 * 1024;
const audio = (name: string): Uint8Array => readFileSync(fileURLToPath(new URL(`../fixtures/audio/${name}`, import.meta.url))).subarray(0, HEAD);
const fseqFixture = (name: string): Uint8Array => readFileSync(fileURLToPath(new URL(`../fixtures/fseq/${name}`, import.meta.url))).subarray(0, HEAD);

const bytes = (...parts: (string | number[])[]): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

const ftyp = (brand: string): Uint8Array => bytes([0, 0, 0, 0x18], 'ftyp', brand, [0, 0, 0, 0], brand, 'isom', [0, 0, 0, 8], 'free');

/** Three back-to-back MPEG-1 Layer III frames, 128 kbit/s, 44.1 kHz, no padding: 417 bytes each. */
function mp3Frames(count = 3): Uint8Array {
  const frame = Buffer.alloc(417);
  frame.set([0xff, 0xfb, 0x90, 0x64]);
  return Buffer.concat(Array.from({ length: count }, () => frame));
}

function adtsFrames(count = 3): Uint8Array {
  const length = 200;
  const frame = Buffer.alloc(length);
  // sync FFF, MPEG-4, layer 0, no CRC; AAC LC, 44.1 kHz (index 4), stereo, frame length 200.
  frame.set([0xff, 0xf1, 0x50, 0x80 | ((length >> 11) & 3), (length >> 3) & 0xff, ((length & 7) << 5) | 0x1f, 0xfc]);
  return Buffer.concat(Array.from({ length: count }, () => frame));
}

describe('sniff: recognised formats', () => {
  const cases: [string, Uint8Array, string, string, Kind[]][] = [
    ['FSEQ v1 (real)', fseqFixture('v1.0_mf_nkaminski_BBK_Merry_Christmas_Baby.fseq'), 'fseq', 'application/x-fseq', ['fseq']],
    ['FSEQ v2', buildFseqV2({ channels: 3, frames: 3 }), 'fseq', 'application/x-fseq', ['fseq']],
    ['old FSEQ magic', buildFseqV1({ channels: 3, frames: 3, magic: 'FSEQ' }), 'fseq', 'application/x-fseq', ['fseq']],
    ['ESEQ', buildEseq({ channels: 3, frames: 3 }), 'eseq', 'application/x-eseq', ['fseq']],
    ['XSQ', Buffer.from(buildXsq().xml), 'xml', 'application/xml', ['xsq']],
    ['XML with BOM and whitespace', bytes([0xef, 0xbb, 0xbf], '\r\n  <xsequence/>'), 'xml', 'application/xml', ['xsq']],
    ['XML comment first', bytes('<!-- saved by xLights -->\n<xsequence/>'), 'xml', 'application/xml', ['xsq']],
    ['XML bomb (DOCTYPE, still XML)', Buffer.from(buildXmlBomb()), 'xml', 'application/xml', ['xsq']],
    ['HTML', bytes('<!DOCTYPE html>\n<html><body>hi</body></html>'), 'html', 'text/html', ['other']],
    ['HTML without doctype', bytes('<?xml version="1.0"?><html/>'), 'html', 'text/html', ['other']],
    ['SVG', bytes('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'), 'svg', 'image/svg+xml', ['other']],
    ['PNG', buildPng(), 'png', 'image/png', ['image']],
    ['JPEG', bytes([0xff, 0xd8, 0xff, 0xe0, 0, 0x10], 'JFIF'), 'jpeg', 'image/jpeg', ['image']],
    ['GIF', bytes('GIF89a', [1, 0, 1, 0, 0, 0, 0]), 'gif', 'image/gif', ['image']],
    ['WEBP', bytes('RIFF', [0x24, 0, 0, 0], 'WEBPVP8 '), 'webp', 'image/webp', ['image']],
    ['TIFF', bytes('II*\0', [8, 0, 0, 0]), 'tiff', 'image/tiff', ['image']],
    ['BMP', bytes('BM', [0x46, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0, 40, 0, 0, 0]), 'bmp', 'image/bmp', ['image']],
    ['AVIF', ftyp('avif'), 'avif', 'image/avif', ['image']],
    ['HEIC', ftyp('heic'), 'heic', 'image/heic', ['image']],
    ['MP3 with ID3v2.3 (real)', audio('mm_id3v2.3.mp3'), 'mp3', 'audio/mpeg', ['audio']],
    ['MP3 with ID3v2.4 (real)', audio('mm_id3v2.4.mp3'), 'mp3', 'audio/mpeg', ['audio']],
    ['MP3 bare MPEG-2 frames (real)', audio('mm_notags.mp3'), 'mp3', 'audio/mpeg', ['audio']],
    ['MP3 bare MPEG-1 frames', mp3Frames(), 'mp3', 'audio/mpeg', ['audio']],
    ['AAC ADTS', adtsFrames(), 'aac', 'audio/aac', ['audio']],
    ['WAV (real)', audio('mm_riff_adobe_audition.wav'), 'wav', 'audio/wav', ['audio']],
    ['Ogg Vorbis (real)', audio('mm_nirvana-2sec.vorbis.ogg'), 'ogg', 'audio/ogg', ['audio']],
    ['Ogg Opus (real)', audio('mm_nirvana-2sec.opus.ogg'), 'opus', 'audio/ogg', ['audio']],
    ['FLAC (real)', audio('mm_flac.flac'), 'flac', 'audio/flac', ['audio']],
    ['FLAC behind ID3', bytes('ID3', [3, 0, 0, 0, 0, 0, 4], 'TIT2', 'fLaC', [0, 0, 0, 0x22]), 'flac', 'audio/flac', ['audio']],
    ['M4A brand M4A (real)', audio('mm_Apple__voice_memo.m4a'), 'm4a', 'audio/mp4', ['audio']],
    ['M4A with trailing garbage (real)', audio('mm_issue-318.m4a'), 'm4a', 'audio/mp4', ['audio']],
    ['AIFF', bytes('FORM', [0, 0, 0, 40], 'AIFFCOMM'), 'aiff', 'audio/aiff', ['audio']],
    ['MP4 isom', ftyp('isom'), 'mp4', 'video/mp4', ['video', 'audio']],
    ['MP4 mp42', ftyp('mp42'), 'mp4', 'video/mp4', ['video', 'audio']],
    ['MP4 dash', ftyp('dash'), 'mp4', 'video/mp4', ['video', 'audio']],
    ['3GP', ftyp('3gp5'), '3gp', 'video/3gpp', ['video', 'audio']],
    ['MOV', ftyp('qt  '), 'mov', 'video/quicktime', ['video']],
    ['M4V', ftyp('M4V '), 'm4v', 'video/x-m4v', ['video']],
    ['WebM', bytes([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 1, 0x42, 0x82, 0x84], 'webm'), 'webm', 'video/webm', ['video', 'audio']],
    ['Matroska', bytes([0x1a, 0x45, 0xdf, 0xa3, 0xa3, 0x42, 0x86, 0x81, 1, 0x42, 0x82, 0x88], 'matroska'), 'mkv', 'video/x-matroska', ['video', 'audio']],
    ['AVI', bytes('RIFF', [0, 0, 0, 0], 'AVI LIST'), 'avi', 'video/x-msvideo', ['video']],
    ['ZIP', bytes('PK', [3, 4, 20, 0, 0, 0, 8, 0]), 'zip', 'application/zip', ['other']],
    ['empty ZIP', bytes('PK', [5, 6], Array(18).fill(0)), 'zip', 'application/zip', ['other']],
    ['7z', bytes([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c, 0, 4]), '7z', 'application/x-7z-compressed', ['other']],
    ['RAR', bytes('Rar!', [0x1a, 7, 1, 0]), 'rar', 'application/vnd.rar', ['other']],
    ['gzip', gzipSync(Buffer.from('hello')), 'gzip', 'application/gzip', ['other']],
    ['bzip2', bytes('BZh91AY&SY'), 'bzip2', 'application/x-bzip2', ['other']],
    ['xz', bytes([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]), 'xz', 'application/x-xz', ['other']],
    ['zstd', bytes([0x28, 0xb5, 0x2f, 0xfd, 0x24, 0]), 'zstd', 'application/zstd', ['other']],
    ['PDF', bytes('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n'), 'pdf', 'application/pdf', ['other']],
    ['ELF', bytes([0x7f], 'ELF', [2, 1, 1, 0]), 'elf', 'application/x-elf', ['other']],
    ['PE', bytes('MZ', [0x90, 0, 3, 0]), 'exe', 'application/vnd.microsoft.portable-executable', ['other']],
    ['Mach-O', bytes([0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1]), 'macho', 'application/x-mach-binary', ['other']],
    ['shell script', bytes('#!/bin/sh\necho hi\n'), 'script', 'text/x-shellscript', ['other']],
  ];

  for (const [name, head, format, mime, kinds] of cases) {
    it(name, () => {
      expect(sniff(head)).toEqual({ format, mime, kinds });
      expect(mimeForFormat(format)).toBe(mime);
    });
  }
});

describe('sniff: things that must not be recognised', () => {
  it('returns null for empty input, plain text and JSON', () => {
    expect(sniff(new Uint8Array(0))).toBeNull();
    expect(sniff(bytes('hello world, this is text\n'))).toBeNull();
    expect(sniff(bytes('{"xsequence": true}'))).toBeNull();
    expect(sniff(bytes('a < b'))).toBeNull();
    expect(sniff(bytes('<?php echo 1; ?>'))).toBeNull();
  });

  it('does not take random bytes with a sync word for MPEG audio', () => {
    // Valid-looking first header, but garbage where the next frame should start.
    const fake = Buffer.alloc(2000, 0x11);
    fake.set([0xff, 0xfb, 0x90, 0x64]);
    expect(sniff(fake)).toBeNull();
    // Reserved fields: version 01, layer 00 (on a non-ADTS sync), bitrate 1111, sample rate 11, emphasis 10.
    expect(sniff(bytes([0xff, 0xeb, 0x90, 0x64]))).toBeNull(); // version bits 01
    expect(sniff(bytes([0xff, 0xe9, 0x90, 0x64]))).toBeNull(); // MPEG-2.5 layer bits 00
    expect(sniff(bytes([0xff, 0xfb, 0xf0, 0x64]))).toBeNull(); // bitrate 1111
    expect(sniff(bytes([0xff, 0xfb, 0x9c, 0x64]))).toBeNull(); // sample rate 11
    expect(sniff(bytes([0xff, 0xfb, 0x90, 0x66]))).toBeNull(); // emphasis 10
    expect(sniff(bytes([0xff, 0xfb, 0x00, 0x64]))).toBeNull(); // free format
  });

  it('random data is almost never recognised as audio', () => {
    let seed = 42;
    let hits = 0;
    for (let round = 0; round < 2000; round++) {
      const head = Buffer.alloc(4096);
      for (let i = 0; i < head.length; i++) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        head[i] = seed >>> 24;
      }
      // Force a plausible sync word at the start to make it hard.
      head[0] = 0xff;
      head[1] = 0xe0 | (head[1]! & 0x1f);
      if (sniff(head)?.kinds.includes('audio')) hits++;
    }
    expect(hits).toBeLessThanOrEqual(2);
  });

  it('ignores unknown RIFF forms and tiny ftyp boxes', () => {
    expect(sniff(bytes('RIFF', [0, 0, 0, 0], 'CDXA'))).toBeNull();
    expect(sniff(bytes([0, 0, 0, 8], 'ftyp'))).toBeNull();
  });
});

describe('declaredKindMatches', () => {
  it('a PNG renamed .fseq does not match fseq', () => {
    const sniffed = sniff(buildPng());
    expect(declaredKindMatches('fseq', sniffed)).toBe(false);
    expect(declaredKindMatches('image', sniffed)).toBe(true);
  });

  it('a ZIP declared as xsq does not match, and says what it is', () => {
    const sniffed = sniff(bytes('PK', [3, 4, 20, 0]));
    expect(sniffed?.format).toBe('zip');
    expect(declaredKindMatches('xsq', sniffed)).toBe(false);
  });

  it('an isom-branded m4a may be declared audio or video', () => {
    const sniffed = sniff(ftyp('isom'));
    expect(declaredKindMatches('audio', sniffed)).toBe(true);
    expect(declaredKindMatches('video', sniffed)).toBe(true);
    expect(declaredKindMatches('image', sniffed)).toBe(false);
  });

  it('ESEQ counts as fseq; unknown content matches only other', () => {
    expect(declaredKindMatches('fseq', sniff(buildEseq({ channels: 1, frames: 1 })))).toBe(true);
    expect(declaredKindMatches('other', null)).toBe(true);
    expect(declaredKindMatches('audio', null)).toBe(false);
    expect(declaredKindMatches('other', sniff(buildPng()))).toBe(true);
  });

  it('unknown formats get a generic MIME type', () => {
    expect(mimeForFormat('nope')).toBe('application/octet-stream');
  });
});

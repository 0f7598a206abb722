#!/usr/bin/env node
// Builds the upload page: web/src (TypeScript + CSS, with Uppy) → web/dist, bundled and minified
// by esbuild. Nothing is fetched at runtime: every script and style is served by the server itself.
//
//   web/dist/index.html             web/index.html with the hashed assets (and their SRI hashes)
//   web/dist/assets/app-HASH.js     one ES module; app-HASH.css next to it (Uppy's styles + ours)
//   web/dist/admin.html             web/admin/index.html likewise (the admin dashboard, /admin)
//   web/dist/favicon.svg            web/public/* as is
//   *.br, *.gz                      precompressed copies the server sends to clients that accept them
//
// Usage: node scripts/build-web.mjs [--if-possible]
//   --if-possible  (used by `npm install`) skip quietly when esbuild is not installed, as in an
//                  install without devDependencies; `npm run build:web` fails loudly instead.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WEB = path.join(ROOT, 'web');
const OUT = path.join(WEB, 'dist');
// The pages: the upload page at / and the admin dashboard at /admin (web/admin; served from
// admin.html beside index.html, so both use the same assets/ directory).
const PAGES = [
  { name: 'app', entry: path.join(WEB, 'src', 'main.ts'), template: path.join(WEB, 'index.html'), output: 'index.html' },
  { name: 'admin', entry: path.join(WEB, 'admin', 'main.ts'), template: path.join(WEB, 'admin', 'index.html'), output: 'admin.html' },
];
const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);

export async function buildWeb({ quiet = false } = {}) {
  const started = Date.now();
  const esbuild = await import('esbuild');
  const staging = path.join(WEB, `.dist-${process.pid}-${Date.now()}`);
  await rm(staging, { recursive: true, force: true });
  try {
    const result = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: Object.fromEntries(PAGES.map((page) => [page.name, page.entry])),
      outdir: path.join(staging, 'assets'),
      entryNames: '[name]-[hash]',
      assetNames: '[name]-[hash]',
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: ['chrome111', 'firefox114', 'safari16.4', 'edge111'],
      minify: true,
      sourcemap: 'linked',
      legalComments: 'linked',
      metafile: true,
      define: { 'process.env.NODE_ENV': '"production"' },
      loader: { '.svg': 'file', '.png': 'file', '.woff': 'file', '.woff2': 'file' },
      tsconfig: path.join(WEB, 'tsconfig.json'),
      logLevel: 'warning',
    });

    const outputs = Object.entries(result.metafile.outputs);
    const tag = async (file, make) => {
      const absolute = path.resolve(ROOT, file);
      const integrity = `sha384-${createHash('sha384').update(await readFile(absolute)).digest('base64')}`;
      return make(`assets/${path.basename(absolute)}`, integrity);
    };
    let js;
    let css;
    for (const page of PAGES) {
      const entry = outputs.find(([file, info]) => file.endsWith('.js') && info.entryPoint && path.resolve(ROOT, info.entryPoint) === page.entry);
      if (!entry) throw new Error(`esbuild produced no JavaScript for ${path.relative(ROOT, page.entry)}`);
      const style = entry[1].cssBundle ? [entry[1].cssBundle] : undefined;
      if (page.name === 'app') [js, css] = [entry, style];
      const tags = [
        style ? await tag(style[0], (href, integrity) => `<link rel="stylesheet" href="${href}" integrity="${integrity}">`) : '',
        await tag(entry[0], (src, integrity) => `<script type="module" src="${src}" integrity="${integrity}"></script>`),
      ].filter(Boolean);
      const template = await readFile(page.template, 'utf8');
      if (!template.includes('<!--assets-->')) throw new Error(`${path.relative(ROOT, page.template)} lacks the <!--assets--> marker`);
      await writeFile(path.join(staging, page.output), template.replace('<!--assets-->', tags.join('\n    ')));
    }
    if (existsSync(path.join(WEB, 'public'))) await cp(path.join(WEB, 'public'), staging, { recursive: true });

    await precompress(staging);
    // Swap the finished build in: a server never reads a half-written tree. Two builds at once
    // (parallel test files) produce the same files; whichever lands last wins.
    for (let attempt = 0; ; attempt++) {
      const old = `${OUT}.old-${process.pid}-${attempt}`;
      await rename(OUT, old).catch((error) => {
        if (error.code !== 'ENOENT') throw error;
      });
      try {
        await rename(staging, OUT);
        await rm(old, { recursive: true, force: true });
        break;
      } catch (error) {
        await rm(old, { recursive: true, force: true });
        if (!['ENOTEMPTY', 'EEXIST'].includes(error.code) || attempt >= 10) throw error;
      }
    }

    if (!quiet) {
      const sizes = await Promise.all(
        [js[0], css?.[0]].filter(Boolean).map(async (file) => {
          const name = path.basename(file);
          const size = (await stat(path.join(OUT, 'assets', name))).size;
          return `${name} ${(size / 1024).toFixed(0)} KiB`;
        }),
      );
      console.log(`web: built web/dist in ${Date.now() - started} ms (${sizes.join(', ')})`);
    }
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

async function precompress(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !/\.(js|css|html|svg)$/.test(entry.name)) continue;
    const file = path.join(entry.parentPath ?? entry.path, entry.name);
    const data = await readFile(file);
    if (data.length < 1024) continue;
    const [br, gz] = await Promise.all([
      brotli(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }),
      gzip(data, { level: 9 }),
    ]);
    if (br.length < data.length) await writeFile(`${file}.br`, br);
    if (gz.length < data.length) await writeFile(`${file}.gz`, gz);
  }
}

const invokedDirectly = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const ifPossible = process.argv.includes('--if-possible');
  try {
    if (ifPossible) {
      try {
        await import('esbuild');
      } catch {
        console.log('web: esbuild is not installed (no devDependencies); the upload page was not built');
        process.exit(0);
      }
    }
    await buildWeb();
  } catch (error) {
    console.error(`web: build failed: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  }
}

// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by package.
//   node --import tsx bench/tools/cpuprofile-summary.ts FILE.cpuprofile [top=25]
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: cpuprofile-summary FILE [top]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);

const where = (url: string) => {
  if (!url) return '(native/vm)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:').split('/').slice(0, 2).join('/');
  return url.replace(/^file:\/\/.*?\/(src|bench|hooks|tasks)\//, '$1/');
};
const fn = new Map<string, number>();
const pkg = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id)!;
  const name = `${n.callFrame.functionName || '(anonymous)'}  ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  fn.set(name, (fn.get(name) ?? 0) + us);
  const p = n.callFrame.functionName.startsWith('(') ? n.callFrame.functionName : where(n.callFrame.url);
  pkg.set(p, (pkg.get(p) ?? 0) + us);
}
const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms`;
const top = Number(topArg ?? 25);
console.log(`total sampled: ${(total / 1e6).toFixed(2)} s\n\nby package / area:`);
for (const [k, v] of [...pkg].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${pct(v)}  ${k}`);
console.log('\nby function (self):');
for (const [k, v] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);

// Optional: callers of one function (third argument), e.g. `writeBuffer`.
const focus = process.argv[4];
if (focus) {
  const parent = new Map<number, number>();
  for (const n of profile.nodes as Array<Node & { children?: number[] }>) for (const c of n.children ?? []) parent.set(c, n.id);
  const stacks = new Map<string, number>();
  for (const [id, us] of self) {
    if (byId.get(id)!.callFrame.functionName !== focus) continue;
    const frames: string[] = [];
    for (let c = parent.get(id); c !== undefined && frames.length < Number(process.env.DEPTH ?? 8); c = parent.get(c)) {
      const f = byId.get(c)!.callFrame;
      frames.push(`${f.functionName || '(anonymous)'} ${where(f.url)}:${f.lineNumber + 1}`);
    }
    const k = frames.join('\n      < ');
    stacks.set(k, (stacks.get(k) ?? 0) + us);
  }
  console.log(`\ncallers of ${focus}:`);
  for (const [k, v] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 4)) console.log(`${pct(v)}  ${k}`);
}

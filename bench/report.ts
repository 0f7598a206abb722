// Results: one row per measured quantity, each with the median of its runs and its ratio against
// a baseline measured in the same invocation; printed as a table and written as JSON.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Machine } from './support.js';
import { BENCH_DIR, median } from './support.js';

export interface Target {
  /** What the target is checked against: the ratio or the median value itself. */
  on: 'ratio' | 'value';
  op: '>=' | '>' | '<=' | '<';
  value: number;
}

export interface Row {
  section: string;
  case: string;
  subject: string;
  unit: string;
  runs: number[];
  median: number;
  baseline?: string;
  baselineMedian?: number;
  /** median / baselineMedian. */
  ratio?: number;
  target?: Target;
  pass?: boolean;
  note?: string;
}

export class Report {
  readonly rows: Row[] = [];
  readonly notes: string[] = [];
  readonly startedAt = new Date();

  constructor(
    readonly machine: Machine,
    readonly options: Record<string, unknown>,
  ) {}

  add(row: Omit<Row, 'median' | 'ratio' | 'pass' | 'baselineMedian'> & { baselineRuns?: number[] }): Row {
    const { baselineRuns, ...rest } = row;
    const m = median(row.runs);
    const baselineMedian = baselineRuns && baselineRuns.length > 0 ? median(baselineRuns) : undefined;
    const ratio = baselineMedian ? m / baselineMedian : undefined;
    let pass: boolean | undefined;
    if (row.target) {
      const x = row.target.on === 'ratio' ? ratio : m;
      if (x !== undefined) {
        const t = row.target.value;
        pass = row.target.op === '>=' ? x >= t : row.target.op === '>' ? x > t : row.target.op === '<=' ? x <= t : x < t;
      }
    }
    const full: Row = { ...rest, median: m, baselineMedian, ratio, pass };
    this.rows.push(full);
    return full;
  }

  note(text: string): void {
    this.notes.push(text);
  }

  table(): string {
    const fmt = (n: number | undefined, digits = 1) =>
      n === undefined || Number.isNaN(n) ? '' : Math.abs(n) >= 1000 ? n.toFixed(0) : n.toFixed(digits);
    const header = ['section', 'case', 'subject', 'median', 'unit', 'runs', 'baseline', 'ratio', 'target', 'ok'];
    const lines = this.rows.map((r) => [
      r.section,
      r.case,
      r.subject,
      fmt(r.median),
      r.unit,
      // Small values (CPU ms per upload) keep two decimals; the rest are whole numbers.
      r.runs.map((x) => fmt(x, Math.abs(x) < 10 ? 2 : 0)).join('/'),
      r.baseline ? `${r.baseline} (${fmt(r.baselineMedian)})` : '',
      r.ratio === undefined ? '' : r.ratio.toFixed(2),
      r.target ? `${r.target.on === 'ratio' ? 'ratio' : 'value'} ${r.target.op} ${r.target.value}` : '',
      r.pass === undefined ? '' : r.pass ? 'yes' : 'NO',
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
    const render = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
    const out = [render(header), render(widths.map((w) => '-'.repeat(w)))];
    let section = '';
    for (const l of lines) {
      if (section && l[0] !== section) out.push('');
      section = l[0]!;
      out.push(render(l));
    }
    return out.join('\n');
  }

  machineText(): string {
    const m = this.machine;
    return [
      `CPU: ${m.cpuModel} × ${m.cores} cores, RAM ${m.ramGiB} GiB, ${m.os}`,
      `Node ${m.node}; disk for temp files: ${m.disk} at ${m.tmpdir}; ${m.postgres}`,
    ].join('\n');
  }

  async write(): Promise<string> {
    const dir = path.join(BENCH_DIR, 'results');
    await mkdir(dir, { recursive: true });
    const stamp = this.startedAt.toISOString().replace(/[:.]/g, '-');
    const file = path.join(dir, `${stamp}.json`);
    const body = {
      startedAt: this.startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      machine: this.machine,
      options: this.options,
      rows: this.rows,
      notes: this.notes,
    };
    await writeFile(file, JSON.stringify(body, null, 2) + '\n');
    return file;
  }
}

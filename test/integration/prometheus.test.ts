// deploy/prometheus/alerts.yml against Prometheus's own tools (Debian's `prometheus` package):
// `promtool check rules`, `promtool test rules` (a unit test per alert, alerts.test.yml), and a
// real Prometheus scraping two running servers and evaluating the rules, so every series and
// label an alert selects is one the server really exports.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { eicar } from '../support/clamd.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { freePort, waitFor } from '../support/ports.js';
import { ROOT, serverEnv, startServer, type TestServer } from '../support/server.js';
import { upload } from '../support/tus.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';

const run = promisify(execFile);
const RULES_DIR = path.join(ROOT, 'deploy', 'prometheus');
const RULES = path.join(RULES_DIR, 'alerts.yml');
/** How many alerts alerts.yml defines. */
const alertCount = async () => (await readFile(RULES, 'utf8')).match(/^\s*- alert: /gm)!.length;
const DASHBOARD = path.join(ROOT, 'deploy', 'grafana', 'dashboard.json');

/** The PromQL of every panel of the Grafana dashboard. */
async function dashboardQueries(): Promise<string[]> {
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
  return dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr));
}

/** Every series selector in the rules' expressions: `name` or `name{matchers}`. */
function selectorsOf(rules: string): string[] {
  const found = new Set<string>();
  for (const match of rules.matchAll(/\b(tus(?:vault)?_[a-z_]+)(\{[^}]*\})?/g)) found.add(match[0]);
  return [...found];
}

describe('alert rules', () => {
  it('pass promtool check rules and their unit tests (promtool test rules)', async () => {
    const checked = await run('promtool', ['check', 'rules', RULES]);
    expect(checked.stdout).toContain(`SUCCESS: ${await alertCount()} rules found`);
    const tested = await run('promtool', ['test', 'rules', path.join(RULES_DIR, 'alerts.test.yml')], { cwd: RULES_DIR });
    expect(tested.stdout).toContain('SUCCESS');
  });
});

describe('Grafana dashboard', () => {
  it('has panels whose queries are valid PromQL (checked by promtool as recording rules)', async () => {
    const queries = await dashboardQueries();
    expect(queries.length).toBeGreaterThanOrEqual(10);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tv-dashboard-'));
    try {
      const rules = queries.map((expr, i) => `      - record: dashboard:panel_${i}\n        expr: ${JSON.stringify(expr)}`).join('\n');
      await writeFile(path.join(dir, 'queries.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
      const checked = await run('promtool', ['check', 'rules', path.join(dir, 'queries.yml')]);
      expect(checked.stdout).toContain(`SUCCESS: ${queries.length} rules found`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('alert rules against a real Prometheus scraping real servers', () => {
  const databases: TestDatabase[] = [];
  const servers: TestServer[] = [];
  let receiver: Receiver;
  let prometheus: ChildProcess | undefined;
  let prometheusUrl: string;
  let dir: string;
  let healthy: TestServer;
  let send: (server: TestServer, data: Buffer, filename: string) => Promise<{ status: string }>;

  const query = async <T>(pathAndQuery: string): Promise<T> => {
    const response = await fetch(`${prometheusUrl}${pathAndQuery}`);
    const body = (await response.json()) as { status: string; data: T };
    expect(body.status).toBe('success');
    return body.data;
  };

  beforeAll(async () => {
    // A webhook receiver that refuses every delivery: attempts end as `retry`.
    receiver = await startReceiver(() => 500);
    const deadClamd = await freePort();

    const launch = async (extra: Record<string, string>) => {
      const db = await createTestDatabase();
      databases.push(db);
      const server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra: jwtEnv(extra) }));
      servers.push(server);
      return server;
    };
    // One server with the real clamd and a refusing webhook receiver; one whose clamd is gone.
    let broken: TestServer;
    [healthy, broken] = await Promise.all([
      launch({
        CLAMAV_HOST: inject('clamdHost'),
        CLAMAV_PORT: String(inject('clamdPort')),
        WEBHOOK_URL: `${receiver.url}/hook`,
        WEBHOOK_SECRET: `whsec_${randomBytes(24).toString('base64')}`,
        WEBHOOK_ALLOW_PRIVATE: 'true',
        // The refused deliveries and the dead clamd are the point: keep their errors out of the output.
        LOG_LEVEL: 'fatal',
      }),
      launch({ CLAMAV_HOST: '127.0.0.1', CLAMAV_PORT: String(deadClamd), CLAMAV_TIMEOUT: '2s', JOB_MAX_ATTEMPTS: '2', LOG_LEVEL: 'fatal' }),
    ]);
    const headers = await bearer('metrics-owner');
    send = async (server, data, filename) =>
      waitForFinal(server.url, await upload(data, { endpoint: `${server.url}/files`, filename, headers }), { headers });
    expect((await send(healthy, randomBytes(2048), 'clean.bin')).status).toBe('ready');
    expect((await send(broken, randomBytes(2048), 'unscanned.bin')).status).toBe('failed');
    // A tus error (an unknown upload), for the dashboard's errors panel.
    const missing = await fetch(`${healthy.url}/files/${'0'.repeat(32)}`, { method: 'HEAD', headers: { ...headers, 'Tus-Resumable': '1.0.0' } });
    expect(missing.status).toBe(404);

    dir = await mkdtemp(path.join(os.tmpdir(), 'tv-prometheus-'));
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    const targets = servers.map((s) => `'${new URL(s.url).host}'`).join(', ');
    await writeFile(
      path.join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['${RULES}']\n` +
        `scrape_configs:\n  - job_name: tusvault\n    static_configs:\n      - targets: [${targets}]\n`,
    );
    prometheus = spawn(
      '/usr/bin/prometheus',
      [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: 'ignore' },
    );
    await waitFor(
      async () => {
        const response = await fetch(`${prometheusUrl}/api/v1/targets`).catch(() => null);
        if (!response?.ok) return false;
        const { data } = (await response.json()) as { data: { activeTargets: Array<{ health: string }> } };
        return data.activeTargets.length === servers.length && data.activeTargets.every((t) => t.health === 'up');
      },
      { timeoutMs: 60_000, what: 'Prometheus to scrape both servers' },
    );
  });

  afterAll(async () => {
    prometheus?.kill('SIGTERM');
    for (const server of servers) await server.stop();
    for (const db of databases) await db.drop();
    await receiver?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('finds data for every series selector the alerts and the dashboard use, with the labels they name', async () => {
    const selectors = [...new Set([...selectorsOf(await readFile(RULES, 'utf8')), ...selectorsOf((await dashboardQueries()).join('\n'))])];
    expect(selectors.length).toBeGreaterThanOrEqual(10);
    const missing: string[] = [];
    for (const selector of selectors) {
      const series = await waitFor(
        async () => {
          const found = await query<unknown[]>(`/api/v1/series?${new URLSearchParams({ 'match[]': selector, start: String(Date.now() / 1000 - 600) })}`);
          return found.length > 0 ? found : null;
        },
        { timeoutMs: 15_000, what: `series ${selector}` },
      ).catch(() => null);
      if (!series) missing.push(selector);
    }
    expect(missing).toEqual([]);
  });

  it('loads the rules and evaluates every one of them without error', async () => {
    const count = await alertCount();
    expect(count).toBeGreaterThanOrEqual(8);
    const rules = await waitFor(
      async () => {
        const data = await query<{ groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> }>('/api/v1/rules');
        const all = data.groups.flatMap((g) => g.rules);
        return all.length === count && all.every((r) => r.health !== 'unknown') ? all : null;
      },
      { timeoutMs: 30_000, what: 'the rules to be evaluated' },
    );
    expect(rules.filter((r) => r.health !== 'ok')).toEqual([]);
    // An infected upload while Prometheus watches: TusvaultInfectedFile pages on it.
    expect((await send(healthy, eicar(), 'eicar.bin')).status).toBe('infected');
    const alerts = await waitFor(
      async () => {
        const data = await query<{ alerts: Array<{ labels: { alertname: string } }> }>('/api/v1/alerts');
        return data.alerts.some((a) => a.labels.alertname === 'TusvaultInfectedFile') ? data.alerts : null;
      },
      { timeoutMs: 30_000, what: 'TusvaultInfectedFile to fire' },
    );
    expect(alerts.map((a) => a.labels.alertname)).toContain('TusvaultInfectedFile');
  });
});

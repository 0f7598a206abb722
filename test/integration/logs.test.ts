// Log formats of the real server process (`tusvault serve`): LOG_FORMAT=json writes one JSON object
// a line (the startup banner's facts as fields), LOG_FORMAT=pretty readable lines and a banner
// that says where the server is and what to do next; request lines carry the request id in both.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { waitFor } from '../support/ports.js';
import { serverEnv, spawnServer } from '../support/server.js';

describe('server logs', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  const serveOnce = async (format: 'json' | 'pretty') => {
    const env = await serverEnv({ databaseUrl: db.url, storage: 'file', extra: { ...jwtEnv(), LOG_FORMAT: format } });
    const server = await spawnServer(env);
    try {
      // A request that fails validation is logged by Fastify with its id (as every request is).
      const response = await fetch(`${server.url}/api/files`, { headers: { 'X-Request-ID': `req-${format}-1234` } });
      expect(response.status).toBe(401);
      await waitFor(() => server.output().includes(`req-${format}-1234`), { timeoutMs: 10_000, what: 'the request to be logged' });
      return { output: server.output(), url: server.url };
    } finally {
      expect(await server.kill('SIGTERM')).toBe(0);
    }
  };

  it('LOG_FORMAT=json: every line is a JSON object; the banner is one of them, with its facts', async () => {
    const { output, url } = await serveOnce('json');
    const lines = output.split('\n').filter((line) => line.trim() !== '');
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records.find((r) => r.msg === 'tusvault is running')).toMatchObject({
      url,
      storage: expect.stringMatching(/^files under /),
      database: expect.stringMatching(/^postgres:\/\/postgres@127\.0\.0\.1/),
      auth: 'jwt (HS256 with AUTH_JWT_SECRET)',
      scanner: 'none (files get scan status "skipped")',
    });
    expect(records.some((r) => r.reqId === 'req-json-1234')).toBe(true);
  });

  it('LOG_FORMAT=pretty: readable lines with the request id, and a banner saying what to do next', async () => {
    const { output, url } = await serveOnce('pretty');
    expect(output).not.toMatch(/^\{/m);
    expect(output).toContain('tusvault is running (ROLE=all)');
    expect(output).toContain(`  url        ${url}\n`);
    expect(output).toContain('  auth       jwt (HS256 with AUTH_JWT_SECRET)');
    expect(output).toContain(`  tus endpoint    ${url}/files`);
    expect(output).toContain('npx tusvault token --sub <owner>');
    // pino-pretty: "[time] INFO: message {fields}" on one line.
    expect(output).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: .*"?reqId"?: ?"req-pretty-1234"/m);
  });
});

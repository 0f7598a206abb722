// deploy/docker-compose.yml cannot be run here (no Docker engine), so what can be checked without
// one is: it is YAML (parsed by PyYAML, which the machine's Python carries for moto), every setting
// it gives the server is a name src/config knows and together they pass the server's own
// validation, the hosts in those settings are services of the file, every depends_on names a
// service, and the build context holds the Dockerfile.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CONFIG_NAMES, loadConfig } from '../../src/config/index.js';
import { ROOT } from '../support/server.js';

interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
}

const COMPOSE = path.join(ROOT, 'deploy', 'docker-compose.yml');

async function parseCompose(): Promise<{ services: Record<string, Service> }> {
  const { stdout } = await promisify(execFile)('python3', [
    '-c',
    'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))',
    COMPOSE,
  ]);
  return JSON.parse(stdout) as { services: Record<string, Service> };
}

/** `${NAME:?message}` / `${NAME:-default}` as compose substitutes them, from `given`. */
function substitute(value: string, given: Record<string, string>): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?::[?-][^}]*)?\}/g, (_, name: string) => {
    if (!(name in given)) throw new Error(`the compose file needs ${name} from the environment`);
    return given[name]!;
  });
}

describe('deploy/docker-compose.yml (validated without a Docker engine)', () => {
  it("sets only settings the server knows, and they pass the server's validation", async () => {
    const { services } = await parseCompose();
    const server = services.tusvault!;
    expect(server, 'a tusvault service').toBeDefined();
    const environment = server.environment ?? {};
    const unknown = Object.keys(environment).filter((name) => !CONFIG_NAMES.includes(name));
    expect(unknown).toEqual([]);

    const env = Object.fromEntries(Object.entries(environment).map(([name, value]) => [name, substitute(String(value), { AUTH_JWT_SECRET: 'x'.repeat(32) })]));
    const config = loadConfig(env);
    expect(config.storage).toBe('s3');
    expect(config.auth.mode).toBe('jwt');

    // The hosts the server is pointed at are services of this file.
    const hosts = [new URL(env.DATABASE_URL!).hostname, new URL(env.S3_ENDPOINT!).hostname, env.CLAMAV_HOST!];
    for (const host of hosts) expect(Object.keys(services), host).toContain(host);
  });

  it('depends only on services it defines, and builds from a context with the Dockerfile', async () => {
    const { services } = await parseCompose();
    for (const [name, service] of Object.entries(services)) {
      for (const dependency of Object.keys(service.depends_on ?? {})) expect(Object.keys(services), `${name} depends on ${dependency}`).toContain(dependency);
      expect(service.build ?? service.image, `${name} has an image or a build`).toBeTruthy();
    }
    const build = services.tusvault!.build!;
    expect(existsSync(path.join(path.dirname(COMPOSE), build.context, build.dockerfile))).toBe(true);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { Store } from '../../src/store/index.js';
import './fixtures/builders.js';

const homes: string[] = [];

/** A fresh CAIRN_HOME for one test, removed afterwards (read-only store trees included). */
export function tempHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'cairn-store-test-'));
  homes.push(home);
  return home;
}

export function tempStore(): Store {
  return Store.open(tempHome());
}

afterEach(() => {
  for (const home of homes.splice(0)) {
    // Store trees are read-only: give directories their write bit back so they can be removed.
    rmSync(home, { recursive: true, force: true, maxRetries: 2 });
  }
});

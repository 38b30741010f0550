import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { describe, it } from 'vitest';

/** Debian's chromium: browser tests drive it with playwright-core (never `playwright install`). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags for a headless chromium on a closed network, as root. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
];

/** Why browser tests cannot run here, or `undefined` when chromium is installed. */
export function chromiumSkipReason(): string | undefined {
  return existsSync(CHROMIUM_PATH)
    ? undefined
    : `${CHROMIUM_PATH} is missing (apt-get install chromium; never "playwright install")`;
}

/**
 * `describe` for tests that need chromium: skipped with the reason when it is missing, and a failing
 * test instead under `MT_PAAS_REQUIRE_SERVICES=1` (CI installs chromium, so a skip there is a fault).
 */
export function describeWithChromium(name: string, fn: () => void): void {
  const missing = chromiumSkipReason();
  if (missing !== undefined && process.env.MT_PAAS_REQUIRE_SERVICES === '1') {
    describe(name, () => {
      it('needs chromium (MT_PAAS_REQUIRE_SERVICES=1)', () => {
        throw new Error(`${missing}; MT_PAAS_REQUIRE_SERVICES=1 forbids skipping the browser test.`);
      });
    });
    return;
  }
  describe.skipIf(missing !== undefined)(
    `${name}${missing === undefined ? '' : ` (skipped: ${missing})`}`,
    fn,
  );
}

/** Launches Debian's chromium headless with {@link CHROMIUM_ARGS} plus `extraArgs`. */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    timeout: 20_000,
    args: [...CHROMIUM_ARGS, ...extraArgs],
  });
}

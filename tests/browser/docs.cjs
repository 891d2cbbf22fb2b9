// The docs page as a person sees it: Debian's chromium, headless, driven by
// playwright-core (installed by `cargo xtask ci` into target/browser; it
// downloads no browser). Renders /docs/, opens GET /api/v1/health, clicks
// "Try it out" then "Execute", saves a screenshot, and prints what it saw as
// one JSON line for tests/tests/browser.rs to judge.
//
// usage: node docs.cjs <base-url> <screenshot.png> <user-data-dir>
'use strict';
const { chromium } = require('playwright-core');

async function main() {
  const [base, screenshot, userDataDir] = process.argv.slice(2);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    viewport: { width: 1280, height: 1400 },
  });
  const seen = { encodings: {} };
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(20000);
    page.on('response', async (response) => {
      const name = new URL(response.url()).pathname;
      const headers = await response.allHeaders();
      seen.encodings[name] = headers['content-encoding'] || 'identity';
    });
    await page.goto(`${base}/docs/`, { waitUntil: 'networkidle' });
    seen.title = (await page.locator('.swagger-ui .info .title').first().innerText()).trim();
    seen.systemTag = await page.locator('[data-tag="System"]').count();
    const operation = page.locator('#operations-System-health_check');
    await operation.locator('.opblock-summary').first().click();
    await operation.locator('button.try-out__btn').click();
    await operation.locator('button.execute').click();
    const live = operation.locator('.live-responses-table .response').first();
    await live.waitFor();
    seen.status = (await live.locator('.response-col_status').innerText()).trim();
    seen.body = (await live.locator('.response-col_description pre').first().innerText()).trim();
    await operation.scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshot, fullPage: true });
  } finally {
    await context.close();
  }
  process.stdout.write(JSON.stringify(seen) + '\n');
}

main().catch((err) => {
  process.stderr.write(`browser: ${err.stack || err}\n`);
  process.exit(1);
});

// The docs page as a person sees it: Debian's chromium, headless, driven by
// playwright-core (installed by `cargo xtask ci` into target/browser; it
// downloads no browser). Renders /docs/, opens GET /api/v1/health, clicks
// "Try it out" then "Execute", saves a screenshot, and prints what it saw as
// one JSON line for tests/tests/browser.rs to judge. Given a token and a
// protected operation's DOM id, it also executes that operation before and
// after entering the token in the Authorize dialog.
//
// usage: node docs.cjs <base-url> <screenshot.png> <user-data-dir> [<token> <operation-id>]
'use strict';
const { chromium } = require('playwright-core');

async function main() {
  const [base, screenshot, userDataDir, token, protectedOperation] = process.argv.slice(2);
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
    if (token) {
      seen.protected = await authorizeAndExecute(page, token, protectedOperation);
    }
    await operation.scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshot, fullPage: true });
  } finally {
    await context.close();
  }
  process.stdout.write(JSON.stringify(seen) + '\n');
}

// Executes `operationId` without a token, then enters `token` for bearerAuth
// in the Authorize dialog and executes it again: both statuses and the last body.
async function authorizeAndExecute(page, token, operationId) {
  const operation = page.locator(`#${operationId}`);
  await operation.locator('.opblock-summary').first().click();
  await operation.locator('button.try-out__btn').click();
  const execute = operation.locator('button.execute');
  const status = operation.locator('.live-responses-table .response .response-col_status').first();
  await execute.click();
  await status.waitFor();
  const before = (await status.innerText()).trim();

  await page.locator('.scheme-container button.authorize').click();
  const dialog = page.locator('.modal-ux');
  await dialog.locator('input[type=text]').first().fill(token);
  await dialog.locator('.auth-btn-wrapper button.authorize').first().click();
  await dialog.locator('.auth-btn-wrapper button.btn-done').first().click();
  await dialog.waitFor({ state: 'detached' });

  await operation.locator('button.btn-clear').click();
  await operation.locator('button.execute').click();
  await status.waitFor();
  const after = (await status.innerText()).trim();
  const body = (await operation
    .locator('.live-responses-table .response .response-col_description pre')
    .first()
    .innerText()).trim();
  return { before, after, body };
}

main().catch((err) => {
  process.stderr.write(`browser: ${err.stack || err}\n`);
  process.exit(1);
});

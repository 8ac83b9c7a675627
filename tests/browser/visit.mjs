// Opens one page as a signed-in user, waits until the page says it is done (window.done),
// and prints what it found (window.results), the page opened after it (SUDOHUB_THEN) and
// the browser's cookies as JSON. Used by tests/tests/browser.rs.
// Environment: as session.mjs, and SUDOHUB_PAGE, SUDOHUB_THEN (paths on SUDOHUB_BASE).
import { base, withSignedInBrowser } from './session.mjs';

await withSignedInBrowser(async (context) => {
  const page = await context.newPage();
  const requests = [];
  context.on('response', (r) => requests.push({ url: r.url(), method: r.request().method(), status: r.status() }));
  await page.goto(base + process.env.SUDOHUB_PAGE);
  await page.waitForFunction(() => window.done === true, null, { timeout: 30000 });
  const results = await page.evaluate(() => window.results);
  const pageUrl = page.url();
  let then = null;
  if (process.env.SUDOHUB_THEN) {
    const r = await page.goto(base + process.env.SUDOHUB_THEN);
    then = { status: r.status(), text: (await page.innerText('body')).slice(0, 300) };
  }
  const jar = (await context.cookies()).map((c) => ({ name: c.name, value: c.value, path: c.path, domain: c.domain }));
  console.log(JSON.stringify({ pageUrl, results, then, cookies: jar, requests }));
});

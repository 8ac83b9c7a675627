// Opens one page in Debian's chromium as a logged-in user would, waits until the page
// says it is done (window.done), and prints what it found (window.results) and the
// browser's cookies as JSON. Used by tests/tests/browser.rs.
//
// Environment: SUDOHUB_BASE (http://127.0.0.1:PORT), SUDOHUB_COOKIES (JSON list of
// {name, value, path}), SUDOHUB_PAGE (path to open), SUDOHUB_THEN (path to open after).
import { chromium } from 'playwright-core';

const base = process.env.SUDOHUB_BASE;
const host = new URL(base).hostname;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  const context = await browser.newContext();
  const cookies = JSON.parse(process.env.SUDOHUB_COOKIES || '[]');
  await context.addCookies(cookies.map((c) => ({
    name: c.name, value: c.value, domain: host, path: c.path, httpOnly: true, sameSite: 'Lax',
  })));
  const page = await context.newPage();
  const requests = [];
  context.on('response', (r) => requests.push({ url: r.url(), method: r.request().method(), status: r.status() }));
  await page.goto(base + process.env.SUDOHUB_PAGE);
  await page.waitForFunction(() => window.done === true, null, { timeout: 30000 });
  const results = await page.evaluate(() => window.results);
  let then = null;
  if (process.env.SUDOHUB_THEN) {
    const r = await page.goto(base + process.env.SUDOHUB_THEN);
    then = { status: r.status(), text: (await page.innerText('body')).slice(0, 300) };
  }
  const jar = (await context.cookies()).map((c) => ({ name: c.name, value: c.value, path: c.path }));
  console.log(JSON.stringify({ results, then, cookies: jar, requests }));
} finally {
  await browser.close();
}

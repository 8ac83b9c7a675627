// What a signed-in user does with the hub's own pages in Debian's chromium, by clicking:
// makes an API token on /hub/token and signs out on /hub/logout. Prints JSON of what the
// pages showed. Used by tests/tests/browser.rs to check that the hub's defences against
// scripts on its origin let the real user through.
//
// Environment: SUDOHUB_BASE, SUDOHUB_COOKIES (as for visit.mjs).
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
  await page.goto(base + '/hub/token');
  await page.fill('input[name="note"]', 'made by clicking');
  await Promise.all([page.waitForNavigation(), page.click('text=Request new API token')]);
  const token = (await page.innerText('body')).match(/shown once\): ([0-9a-f]{32})/);
  const afterToken = { url: page.url(), token: token ? token[1] : null };
  await page.goto(base + '/hub/logout');
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Sign out")')]);
  const afterLogout = { url: page.url(), text: (await page.innerText('body')).slice(0, 200) };
  console.log(JSON.stringify({ afterToken, afterLogout }));
} finally {
  await browser.close();
}

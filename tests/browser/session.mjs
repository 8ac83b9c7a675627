// Debian's chromium with a signed-in user's cookies, for the scripts of this directory.
// Environment: SUDOHUB_BASE (http://127.0.0.1:PORT), SUDOHUB_COOKIES (JSON list of
// {name, value, path}), CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';

export const base = process.env.SUDOHUB_BASE;

/** Runs `body(context)` in a fresh browser holding the cookies; closes the browser. */
export async function withSignedInBrowser(body) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  try {
    const context = await browser.newContext();
    const host = new URL(base).hostname;
    const cookies = JSON.parse(process.env.SUDOHUB_COOKIES || '[]');
    await context.addCookies(cookies.map((c) => ({
      name: c.name, value: c.value, domain: host, path: c.path, httpOnly: true, sameSite: 'Lax',
    })));
    return await body(context);
  } finally {
    await browser.close();
  }
}

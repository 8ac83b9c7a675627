// Signing in through an OpenID Connect provider in a real browser: the hub's login page,
// its "Sign in with …" button, the provider's own login form on another site
// (localhost, while the hub is on 127.0.0.1), and back to the hub signed in. Proves the
// state cookie comes back on the provider's cross-site redirect (SameSite=Lax) and the
// session starts. Prints JSON of what it saw; used by tests/tests/hub_e2e.rs.
// Environment: as session.mjs (no cookies), plus SUDOHUB_PROVIDER_LOGIN (the name typed
// on the provider's form).
import { base, withSignedInBrowser } from './session.mjs';

const env = process.env;
const report = {};

await withSignedInBrowser(async (context) => {
  const page = await context.newPage();
  try {
    await page.goto(base + '/hub/login');
    report.button = (await page.textContent('#oauth-login')).trim();
    report.passwordForm = await page.locator('input[type=password]').count();
    await Promise.all([page.waitForURL(/\/interaction\//), page.click('#oauth-login')]);
    report.providerPage = new URL(page.url()).host;
    await page.fill('input[name=login]', env.SUDOHUB_PROVIDER_LOGIN);
    await page.fill('input[name=password]', 'any');
    await Promise.all([
      page.waitForURL((u) => u.toString().startsWith(base + '/hub/spawn') || u.toString().startsWith(base + '/hub/login') || u.toString().startsWith(base + '/hub/oauth_callback')),
      page.click('button[type=submit]'),
    ]);
    await page.waitForLoadState('load');
    report.landedAt = new URL(page.url()).pathname;
    await page.goto(base + '/hub/home');
    report.home = await page.textContent('p');
  } catch (e) {
    const shot = `${env.SUDOHUB_SHOTS || '/tmp'}/oidc-${Date.now()}.png`;
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    report.failure = `${e.message} (screenshot: ${shot}; at ${page.url()})`;
  }
});
console.log(JSON.stringify(report));
if (report.failure) process.exitCode = 1;

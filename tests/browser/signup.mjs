// Someone signs up from the login page, is told to wait, and cannot sign in yet; an
// admin (signing in with the form) follows the admin page's link to /hub/authorize and
// approves them; then they sign in. Prints JSON of what it saw; used by
// tests/tests/hub_e2e.rs. Environment: as session.mjs (no cookies), plus SUDOHUB_NEW and
// SUDOHUB_NEW_PASSWORD (the sign-up), SUDOHUB_ADMIN and SUDOHUB_ADMIN_PASSWORD.
import { base, withSignedInBrowser } from './session.mjs';

const env = process.env;
const report = {};

async function signIn(page, name, password) {
  await page.goto(base + '/hub/login');
  await page.fill('input[name=username]', name);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
}

await withSignedInBrowser(async (context) => {
  const page = await context.newPage();
  const admin = await (await context.browser().newContext()).newPage();
  try {
    await page.goto(base + '/hub/login');
    await Promise.all([page.waitForURL(/\/hub\/signup/), page.click('a:has-text("Sign up")')]);
    await page.fill('input[name=username]', env.SUDOHUB_NEW);
    await page.fill('input[name=password]', env.SUDOHUB_NEW_PASSWORD);
    await page.fill('input[name=password_again]', env.SUDOHUB_NEW_PASSWORD);
    await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
    report.signedUp = await page.textContent('h1');
    report.signedUpText = await page.textContent('body');
    await signIn(page, env.SUDOHUB_NEW, env.SUDOHUB_NEW_PASSWORD);
    report.beforeApproval = await page.textContent('.err');

    await signIn(admin, env.SUDOHUB_ADMIN, env.SUDOHUB_ADMIN_PASSWORD);
    await admin.goto(base + '/hub/admin');
    report.adminLink = await admin.textContent('#authorize-link');
    await Promise.all([admin.waitForURL(/\/hub\/authorize/), admin.click('#authorize-link')]);
    const row = `tr[data-name="${env.SUDOHUB_NEW}"]`;
    report.listed = await admin.textContent(row);
    await Promise.all([admin.waitForLoadState('load'), admin.click(`${row} button:has-text("Approve")`)]);
    report.afterApproval = await admin.textContent(row);

    await signIn(page, env.SUDOHUB_NEW, env.SUDOHUB_NEW_PASSWORD);
    report.signedInAt = page.url();
    await page.goto(base + '/hub/home');
    report.home = await page.textContent('p');
  } catch (e) {
    const shot = `${env.SUDOHUB_SHOTS || '/tmp'}/signup-${Date.now()}.png`;
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    await admin.screenshot({ path: shot.replace('.png', '-admin.png'), fullPage: true }).catch(() => {});
    report.failure = `${e.message} (screenshots: ${shot})`;
  }
});
console.log(JSON.stringify(report));
if (report.failure) process.exitCode = 1;

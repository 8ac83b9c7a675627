// An admin starts another user's server from /hub/admin, opens it ("Access server", a
// new tab that goes through the hub's OAuth as the admin and lands in JupyterLab), then
// stops every server with "Stop all". Prints JSON of what it saw; used by
// tests/tests/hub_e2e.rs. Environment: as session.mjs, plus SUDOHUB_USER (whose server),
// SUDOHUB_SHOTS (a directory for screenshots).
import { base, withSignedInBrowser } from './session.mjs';

const user = process.env.SUDOHUB_USER;
const report = {};

await withSignedInBrowser(async (context) => {
  const page = await context.newPage();
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  const row = `tr[data-user="${user}"]`;
  const state = () => page.textContent(`${row} .pill`);
  try {
    await page.goto(base + '/hub/admin');
    await page.fill('#search', user);
    await page.waitForSelector(`${row} button:has-text("Start")`);
    report.before = await state();
    await page.click(`${row} button:has-text("Start")`);
    // The page follows a pending server by itself until it runs.
    await page.waitForSelector(`${row} .pill.ready`, { timeout: 120000 });
    report.started = await state();
    // With limits in root's helpers.toml, the row says what the server may and does use.
    const res = await page.$(`${row} .resources`);
    report.resources = res ? await res.textContent() : null;
    const [tab] = await Promise.all([
      context.waitForEvent('page'),
      page.click(`${row} a:has-text("Access server")`),
    ]);
    await tab.waitForURL(/\/lab/, { timeout: 60000 });
    await tab.waitForSelector('#jp-main-dock-panel', { timeout: 60000 });
    report.access = { url: tab.url(), title: await tab.title(),
      opener: await tab.evaluate(() => window.opener === null) };
    await tab.close();
    await page.click('#stop-all');
    await page.waitForSelector(`${row} .pill:not(.ready):not(.pending)`, { timeout: 60000 });
    report.stopped = await state();
    report.status = await page.textContent('#status');
  } catch (e) {
    const shot = `${process.env.SUDOHUB_SHOTS || '/tmp'}/admin-server-${Date.now()}.png`;
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    report.failure = `${e.message} (screenshot: ${shot})`;
  }
  report.dialogs = dialogs;
});
console.log(JSON.stringify(report));
if (report.failure) process.exitCode = 1;

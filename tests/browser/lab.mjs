// A user's whole day in chromium: signs in on the hub's login page, starts the server,
// watches the progress page, lands in JupyterLab, opens a notebook, runs a cell that prints the uid
// the kernel runs as, and signs out. Prints JSON of what it saw; used by
// tests/tests/hub_e2e.rs. Environment: as session.mjs (no cookies needed), plus
// SUDOHUB_USER, SUDOHUB_PASSWORD and SUDOHUB_SHOTS (a directory for screenshots); with
// SUDOHUB_SERVER_NAME, the server is a named one, added with the home page's form.
import { base, withSignedInBrowser } from './session.mjs';

const report = {};
const named = process.env.SUDOHUB_SERVER_NAME || '';
const labPath = named ? new RegExp(`/user/[^/]+/${named}/lab`) : /\/user\/[^/]+\/lab/;

await withSignedInBrowser(async (context) => {
  const page = await context.newPage();
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame() && f.url().includes('/hub/spawn-pending/')) report.sawProgressPage = true;
  });
  try {
    await page.goto(base + '/hub/login');
    await page.fill('input[name="username"]', process.env.SUDOHUB_USER);
    await page.fill('input[name="password"]', process.env.SUDOHUB_PASSWORD);
    await page.click('button[type="submit"]');
    // The spawn page: one click (a GET never starts anything), then the progress page
    // follows the spawn, then JupyterLab.
    await page.waitForURL(/\/hub\/spawn/, { timeout: 30000 });
    if (named) {
      await page.goto(base + '/hub/home');
      await page.fill('#server_name', named);
      await page.click('#new-server button');
    } else {
      await page.click('button:has-text("Start my server")');
    }
    await page.waitForURL(/\/hub\/spawn-pending\/|\/lab/, { timeout: 30000 });
    if (page.url().includes('/spawn-pending/')) {
      report.progressBar = (await page.$('progress#bar')) !== null;
    }
    await page.waitForURL(labPath, { timeout: 120000 });
    await page.waitForSelector('#jp-main-dock-panel', { timeout: 60000 });
    report.labUrl = page.url();
    // A notebook from the launcher, one cell, its output.
    await page.click('.jp-LauncherCard[data-category="Notebook"]', { timeout: 60000 });
    const cell = page.locator('.jp-Notebook .jp-Cell .cm-content').first();
    await cell.waitFor({ timeout: 60000 });
    // The kernel must be up (the status bar says "Idle"): a cell run before that is lost.
    await page.getByText(/\(ipykernel\) \| Idle/).first().waitFor({ timeout: 90000 });
    await cell.click();
    await page.keyboard.type("import os; print('uid', os.getuid(), os.environ['JUPYTERHUB_SERVER_NAME'] or '-')");
    await page.keyboard.press('Shift+Enter');
    const out = page.locator('.jp-OutputArea-output').first();
    await out.waitFor({ timeout: 90000 });
    report.output = (await out.innerText()).trim();
    if (named) {
      await page.goto(base + '/hub/home');
      report.homeRow = (await page.locator(`tr[data-server="${named}"]`).innerText()).replace(/\s+/g, ' ');
    }
    // Signing out: the hub's page, one click.
    await page.goto(base + '/hub/logout');
    await Promise.all([page.waitForNavigation(), page.click('button:has-text("Sign out")')]);
    report.afterLogout = page.url();
    const again = await page.goto(base + '/hub/home');
    report.homeAfterLogout = again.url();
  } catch (e) {
    const shot = `${process.env.SUDOHUB_SHOTS || '/tmp'}/lab-${Date.now()}.png`;
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    report.failure = `${e.message} (screenshot: ${shot}; at ${page.url()})`;
  }
});
console.log(JSON.stringify(report));
if (report.failure) process.exitCode = 1;

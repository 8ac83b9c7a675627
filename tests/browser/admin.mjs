// An admin at work on /hub/admin, by clicking and typing: pages through the users,
// searches, sorts, adds users, edits one (rename and admin flag), deletes one, tries a
// bad name, asks to stop all with nothing running, and manages groups (create, members,
// properties, delete). Prints JSON of what each step showed; tests/tests/browser.rs
// checks it against the hub's database. On failure it saves a screenshot and says where.
// Environment: as session.mjs, plus SUDOHUB_SHOTS (a directory for screenshots) and
// SUDOHUB_SHOTS_ALWAYS=1 to keep a screenshot of each tab at the end.
import { base, withSignedInBrowser } from './session.mjs';

const report = { steps: [] };

await withSignedInBrowser(async (context) => {
  const page = await context.newPage();
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  const requests = [];
  page.on('request', (r) => {
    if (r.url().includes('/hub/api/')) {
      requests.push({ method: r.method(), url: r.url(), cookie: 'cookie' in r.headers(),
        token: /^token /.test(r.headers().authorization || '') });
    }
  });

  const names = () => page.$$eval('#users-table tbody tr[data-user]', (trs) => trs.map((t) => t.dataset.user));
  const groups = () => page.$$eval('#groups-table tbody tr[data-group]', (trs) => trs.map((t) => ({
    name: t.dataset.group,
    members: [...t.querySelectorAll('.member')].map((m) => m.firstChild.textContent),
  })));
  const status = () => page.textContent('#status');
  // Does `fn`, then waits for the list it reloads and for the status to settle.
  const settled = async (list, fn) => {
    const reloaded = page.waitForResponse((r) => r.url().includes(`/hub/api/${list}?`)
      && r.request().method() === 'GET');
    await fn();
    await reloaded;
    await page.waitForFunction(() => !document.getElementById('status').textContent.endsWith('…'));
    await page.waitForTimeout(100);
  };
  const step = async (name, list, fn) => {
    await settled(list, fn);
    const s = { name, status: await status(), error: (await page.getAttribute('#status', 'class')) === 'err' };
    if (list === 'users') Object.assign(s, { names: await names(), range: await page.textContent('#range') });
    else s.groups = await groups();
    report.steps.push(s);
    return s;
  };

  try {
    await step('first page', 'users', async () => {
      const r = await page.goto(base + '/hub/admin');
      report.pageStatus = r.status();
    });
    report.token = JSON.parse(await page.textContent('#admin-data')).token;
    await step('next page', 'users', () => page.click('#next'));
    await step('previous page', 'users', () => page.click('#prev'));
    await step('search', 'users', () => page.fill('#search', 'user05'));
    await step('sorted by name', 'users', () => page.selectOption('#sort', 'name'));
    await step('search cleared, created order', 'users', async () => {
      await page.fill('#search', '');
      await page.selectOption('#sort', 'id');
    });
    await step('stopped only', 'users', () => page.selectOption('#state', 'inactive'));
    await step('running only', 'users', () => page.selectOption('#state', 'active'));
    await step('everyone again', 'users', () => page.selectOption('#state', ''));
    await step('stop all with nothing running', 'users', async () => {
      await page.click('#stop-all');
      await page.waitForFunction(() => /No server/.test(document.getElementById('status').textContent));
      await page.selectOption('#limit', '100'); // reloads the list, all on one page
    });
    await step('add users', 'users', async () => {
      await page.click('#add-open');
      await page.fill('#add-names', 'newa\nnewb');
      await page.check('#add-admin');
      await page.click('#add-submit');
    });
    await step('a bad name is refused', 'users', async () => {
      await page.click('#add-open');
      await page.fill('#add-names', 'Bad!');
      await page.click('#add-submit');
    });
    await step('search for the one to edit', 'users', () => page.fill('#search', 'user000'));
    await step('rename and make admin', 'users', async () => {
      await page.click('tr[data-user="user000"] button:has-text("Edit")');
      await page.fill('#users-table tbody tr input:not([type])', 'user000x');
      await page.check('#users-table tbody tr input[type="checkbox"]');
      await page.click('#users-table tbody tr button:has-text("Save")');
    });
    await step('search for the one to delete', 'users', () => page.fill('#search', 'user001'));
    await step('delete', 'users', () => page.click('tr[data-user="user001"] button:has-text("Delete")'));

    await step('groups tab', 'groups', () => page.click('#tab-groups'));
    await step('create a group', 'groups', async () => {
      await page.fill('#group-name', 'physics');
      await page.click('#group-add button');
    });
    await step('create another', 'groups', async () => {
      await page.fill('#group-name', 'scratch');
      await page.click('#group-add button');
    });
    await step('add members', 'groups', async () => {
      await page.fill('tr[data-group="physics"] form input', 'user002 user003');
      await page.press('tr[data-group="physics"] form input', 'Enter');
    });
    await step('remove a member', 'groups',
      () => page.click('tr[data-group="physics"] .member button[title="remove user002"]'));
    await step('set properties', 'groups', async () => {
      await page.fill('tr[data-group="physics"] textarea', '{"course": "PHY101"}');
      await page.click('tr[data-group="physics"] button:has-text("Save properties")');
    });
    await step('delete a group', 'groups',
      () => page.click('tr[data-group="scratch"] button:has-text("Delete group")'));
    if (process.env.SUDOHUB_SHOTS_ALWAYS) { // for a look at the page: both tabs
      await page.screenshot({ path: `${process.env.SUDOHUB_SHOTS}/admin-groups.png`, fullPage: true });
      await settled('users', () => page.click('#tab-users'));
      await page.screenshot({ path: `${process.env.SUDOHUB_SHOTS}/admin-users.png` });
    }
  } catch (e) {
    const shot = `${process.env.SUDOHUB_SHOTS || '/tmp'}/admin-${Date.now()}.png`;
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    report.failure = `${e.message} (screenshot: ${shot})`;
  }
  report.dialogs = dialogs;
  report.requests = requests;
});
console.log(JSON.stringify(report));
if (report.failure) process.exitCode = 1;

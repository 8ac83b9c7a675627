// What a signed-in user does with the hub's own pages, by clicking: makes an API token on
// /hub/token and signs out on /hub/logout. Prints JSON of where that led. Used by
// tests/tests/browser.rs to check that the hub's defences against scripts on its origin
// let the real user through. Environment: as session.mjs.
import { base, withSignedInBrowser } from './session.mjs';

await withSignedInBrowser(async (context) => {
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
});

// Opens an action link's page in Debian's headless Chromium, with JavaScript off (the page
// must work without it), and, with SUBMIT=1, fills in a name and presses its button, then
// opens the link again (the name should be remembered). Prints what it saw as one JSON
// object for tests/integration/actions.rs to check. It asserts nothing itself.
//
//   LINK_URL=http://127.0.0.1:PORT/act/… NAME=Alice SUBMIT=1 \
//   SCREENSHOT=docs/action-page.png node tests/browser/action_page.mjs
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const link = env('LINK_URL');
const name = env('NAME');
const submit = env('SUBMIT') === '1';
const screenshot = process.env.SCREENSHOT;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // CI runs as root, where Chromium's sandbox cannot start; /dev/shm is small in containers.
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const seen = {};
const text = (page, selector) => page.$eval(selector, (e) => e.innerText).catch(() => null);
try {
  const context = await browser.newContext({
    javaScriptEnabled: false,
    viewport: { width: 480, height: 900 },
  });
  const page = await context.newPage();
  const response = await page.goto(link);
  seen.status = response.status();
  seen.headers = response.headers();
  seen.heading = await text(page, '#heading');
  seen.matchers = await page.$$eval('#matchers li', (items) => items.map((i) => i.innerText));
  seen.acknowledged = await text(page, '#acknowledged');
  seen.silences = await text(page, '#silences');
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  if (submit) {
    await page.fill('#act input[name=name]', name);
    await page.fill('#act textarea[name=comment]', 'from the browser test');
    const [answer] = await Promise.all([
      page.waitForNavigation(),
      page.click('#act button[type=submit]'),
    ]);
    seen.submitStatus = answer.status();
    seen.done = await text(page, '#done');
    seen.problem = await text(page, '#problem');
    await page.goto(link);
    seen.rememberedName = await page.$eval('#act input[name=name]', (e) => e.value);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));

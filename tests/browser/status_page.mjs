// Drives the status page in Debian's headless Chromium, with JavaScript off (the page
// must work without it), and prints what it saw as one JSON object for
// tests/integration/status_page.rs to check. It asserts nothing itself.
//
//   BRIDGE_URL=http://127.0.0.1:PORT BRIDGE_TOKEN=... PAYLOAD_FILE=payload.json \
//   TEST_ROBOT=ops SCREENSHOT=tests/browser/status-page.png node tests/browser/status_page.mjs
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const url = env('BRIDGE_URL');
const token = env('BRIDGE_TOKEN');
const payload = readFileSync(env('PAYLOAD_FILE'), 'utf8');
const testRobot = env('TEST_ROBOT');
const screenshot = env('SCREENSHOT');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // CI runs as root, where Chromium's sandbox cannot start; /dev/shm is small in containers.
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const seen = { pages: [] };
try {
  // Chromium ends a navigation that gets a 401 without credentials to offer with an
  // error, so the status is read with the context's own HTTP client.
  const anonymous = await browser.newContext();
  seen.unauthenticatedStatus = (await anonymous.request.get(url + '/')).status();

  const context = await browser.newContext({
    javaScriptEnabled: false,
    httpCredentials: { username: 'operator', password: token },
    viewport: { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  const rowTexts = (selector, key) =>
    page.$$eval(selector, (rows, key) =>
      Object.fromEntries(rows.map((row) => [row.dataset[key], row.innerText])), key);

  seen.status = (await page.goto(url + '/')).status();
  seen.robots = await rowTexts('#robots tr[data-robot]', 'robot');
  seen.deadLetters = await page.$$eval('#robots tr[data-robot]', (rows) =>
    Object.fromEntries(rows.map((row) => [
      row.dataset.robot,
      row.querySelector('.dead-letters').innerText,
    ])));
  seen.strategies = await rowTexts('#strategies tr[data-strategy]', 'strategy');
  seen.pages.push(await page.content());

  await page.fill('textarea[name=payload]', payload);
  await Promise.all([page.waitForNavigation(), page.click('#preview button[type=submit]')]);
  seen.previewError = await page.$eval('#preview-error', (e) => e.innerText).catch(() => null);
  seen.routed = await page.$$eval('#preview-result .routed-alert .matched', (cells) =>
    cells.map((cell) => cell.innerText));
  seen.messages = await page.$$eval('#preview-result .message', (messages) =>
    messages.map((message) => {
      const bubble = message.querySelector('.bubble');
      const box = bubble.getBoundingClientRect();
      return {
        robot: message.dataset.robot,
        strategy: message.dataset.strategy,
        bubbleText: bubble.innerText,
        bubbleVisible: box.width > 100 && box.height > 50,
        headings: [...bubble.querySelectorAll('h1, h2, h3, h4, h5, h6')].map((h) => h.innerText),
        links: [...bubble.querySelectorAll('a')].map((a) => a.getAttribute('href')),
        body: message.querySelector('pre.body').textContent,
      };
    }));
  await page.screenshot({ path: screenshot, fullPage: true });
  seen.pages.push(await page.content());

  await Promise.all([
    page.waitForNavigation(),
    page.click(`#robots tr[data-robot="${testRobot}"] button`),
  ]);
  seen.testResult = await page.$eval('#test-result', (e) => e.innerText).catch(() => null);
  seen.pages.push(await page.content());
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));

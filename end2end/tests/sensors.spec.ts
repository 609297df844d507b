import { expect, test } from '@playwright/test';

test('the sensor page shows six live temperature series', async ({ page }) => {
  const browserErrors: string[] = [];
  page.on('pageerror', (error) => browserErrors.push(error.message));

  await page.goto('/');
  const chart = page.getByTestId('temperature-chart');
  await expect(chart).toHaveAttribute('data-series', '6');
  // One line per sensor, each labelled with its location in the legend.
  await expect(chart.locator('svg polyline[stroke-width="2"]')).toHaveCount(6);
  for (const location of ['Research Lab #2203', 'Zone 2 Semiconductor Assembly Area A2']) {
    await expect(chart.locator('svg')).toContainText(location);
  }
  await expect(page.getByTestId('sensor-averages').locator('tbody tr')).toHaveCount(6);

  // Mark this document (a reload would lose the mark) and watch that the
  // chart never leaves the screen while it refreshes.
  await page.evaluate(() => {
    const w = window as any;
    w.__pulseboardDocument = 'first-load';
    w.__chartWentMissing = false;
    new MutationObserver(() => {
      if (!document.querySelector('[data-testid="temperature-chart"] svg')) w.__chartWentMissing = true;
    }).observe(document.body, { subtree: true, childList: true });
  });
  const asOfBefore = await page.getByTestId('temperature-as-of').textContent();

  // New readings appear by themselves within 15 s.
  await expect
    .poll(async () => page.getByTestId('temperature-as-of').textContent(), { timeout: 15_000 })
    .not.toBe(asOfBefore);
  expect(await page.evaluate(() => (window as any).__pulseboardDocument)).toBe('first-load');
  expect(await page.evaluate(() => (window as any).__chartWentMissing)).toBe(false);
  expect(browserErrors).toEqual([]);
});

test('pages load their own code on the way: sensors to the dashboard list to a dashboard, in one document', async ({ page }) => {
  const browserErrors: string[] = [];
  page.on('pageerror', (error) => browserErrors.push(error.message));
  // Each module as the browser received it: brotli-compressed, the smallest.
  const wasmEncodings = new Map<string, string>();
  page.on('response', (response) => {
    const path = new URL(response.url()).pathname;
    if (path.endsWith('.wasm')) wasmEncodings.set(path, response.headers()['content-encoding'] ?? 'none');
  });
  await page.goto('/');
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  await page.evaluate(() => ((window as any).__pulseboardDocument = 'first-load'));

  await page.getByRole('link', { name: 'Dashboards' }).click();
  await page.getByTestId('dashboard-list').getByRole('link', { name: 'Sensors' }).click();
  await expect(page).toHaveURL(/\/d\/sensors$/);
  await expect(page.getByTestId('dashboard-name')).toHaveText('Sensors');
  // The dashboard works: its edit button opens edit mode.
  await page.getByTestId('edit-dashboard').click();
  await expect(page.getByTestId('edit-dashboard')).toHaveCount(0);
  expect(await page.evaluate(() => (window as any).__pulseboardDocument)).toBe('first-load');
  expect(browserErrors).toEqual([]);
  expect(wasmEncodings.size).toBeGreaterThan(1);
  for (const [path, encoding] of wasmEncodings) expect(`${path}: ${encoding}`).toBe(`${path}: br`);
});

import { expect, test } from '@playwright/test';

test('the streams page shows the sensor stream live', async ({ page }) => {
  await page.goto('/streams');
  const row = page.getByTestId('streams').locator('tr[data-stream="sensors"]');
  await expect(row).toBeVisible();
  // The simulator writes six readings a second through Kafka.
  await expect.poll(async () => Number(await row.locator('.rate').textContent())).toBeGreaterThan(0);
  await expect(row.locator('.lag')).toHaveText(/^\d+$/);
  await expect(row.locator('.latency')).toHaveText(/ms$/);
  const lastEvent = await row.locator('.last-event').textContent();
  await expect.poll(async () => row.locator('.last-event').textContent(), { timeout: 15_000 }).not.toBe(lastEvent);

  // The navigation leads back to the sensors.
  await page.getByRole('link', { name: 'Sensors' }).click();
  await expect(page.getByTestId('temperature-chart')).toBeVisible();
});

test('the streams page lists the sales streams, fed through Kafka', async ({ page }) => {
  await page.goto('/streams');
  const streams = page.getByTestId('streams');
  for (const name of ['products', 'purchases', 'inventories']) {
    await expect(streams.locator(`tr[data-stream="${name}"]`)).toBeVisible();
  }
  // The sales simulator sells five smoothies a second through demo.purchases.
  const purchases = streams.locator('tr[data-stream="purchases"]');
  await expect
    .poll(async () => Number(await purchases.locator('.rate').textContent()), { timeout: 20_000 })
    .toBeGreaterThan(0);
  await expect(purchases.locator('.lag')).toHaveText(/^\d+$/);
  await expect(purchases.locator('.latency')).toHaveText(/ms$/);
});

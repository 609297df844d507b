import { expect, test, type Browser, type Page } from '@playwright/test';

// Signing in, roles and public dashboards, against the running server.

async function open(page: Page, path: string) {
  await page.goto(path);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

/** A browser with no session of its own. */
async function stranger(browser: Browser) {
  const context = await browser.newContext({ storageState: { cookies: [], origins: [] } });
  return context.newPage();
}

test('a page asks for signing in first and a wrong password is refused', async ({ browser }) => {
  const page = await stranger(browser);
  await page.goto('/charts');
  await expect(page).toHaveURL(/\/login\?next=\/charts$/);
  await page.getByTestId('username').fill('admin');
  await page.getByTestId('password').fill('not the password at all');
  await page.getByTestId('sign-in').click();
  await expect(page.getByTestId('sign-in-error')).toHaveText('Wrong username or password.');
  await expect(page).toHaveURL(/\/login\?error=wrong&next=\/charts$/);
});

test('an admin adds a viewer who reads but cannot change, and a public dashboard needs no account', async ({ page, browser }) => {
  const name = `viewer-${Date.now()}`;
  const password = 'a viewer password';
  await open(page, '/admin');
  await page.getByTestId('new-user-name').fill(name);
  await page.getByTestId('new-user-password').fill(password);
  await page.getByTestId('new-user-role').selectOption('viewer');
  await page.getByTestId('create-user').click();
  await expect(page.getByTestId('admin-status')).toHaveText('Account created.');
  await expect(page.getByTestId(`user-${name}`)).toHaveCount(1);

  const viewer = await stranger(browser);
  await viewer.goto('/login?next=/charts/new');
  await viewer.getByTestId('username').fill(name);
  await viewer.getByTestId('password').fill(password);
  await viewer.getByTestId('sign-in').click();
  await expect(viewer).toHaveURL(/\/charts\/new$/);
  await expect(viewer.locator('body[data-hydrated="true"]')).toHaveCount(1);
  await expect(viewer.getByTestId('signed-in-as')).toHaveText(`${name} (viewer)`);
  await viewer.getByTestId('chart-name').fill('Not by a viewer');
  await viewer.getByTestId('save-chart').click();
  await expect(viewer.getByTestId('editor-status')).toContainText('Not saved: not allowed: this needs the editor role');
  // Pages a viewer may not use say so, and still work as pages.
  await open(viewer, '/admin');
  await expect(viewer.getByRole('alert')).toContainText('this needs the admin role');
  await open(viewer, '/d/sensors');
  await expect(viewer.getByTestId('edit-dashboard')).toHaveCount(0);
  await viewer.getByTestId('sign-out').click();
  await expect(viewer).toHaveURL(/\/login$/);
  await viewer.goto('/d/sensors');
  await expect(viewer).toHaveURL(/\/login\?next=\/d\/sensors$/);

  // Public: anyone with the address reads it, without the controls to change it.
  await page.getByTestId('public-sales').check();
  await expect(page.getByTestId('admin-status')).toHaveText('Dashboard made public.');
  const anyone = await stranger(browser);
  await open(anyone, '/d/sales');
  await expect(anyone.locator('[data-chart-id] svg').first()).toBeVisible();
  await expect(anyone.getByTestId('edit-dashboard')).toHaveCount(0);
  await expect(anyone.getByTestId('sign-in-link')).toHaveCount(1);
  await page.getByTestId('public-sales').uncheck();
  await expect(page.getByTestId('admin-status')).toHaveText('Dashboard made private.');
  await anyone.goto('/d/sales');
  await expect(anyone).toHaveURL(/\/login\?next=\/d\/sales$/);
});

test('an admin makes an ingest key that works until it is revoked', async ({ page, request }) => {
  await open(page, '/admin');
  await page.getByTestId('new-key-name').fill(`browser test ${Date.now()}`);
  await page.getByTestId('create-key').click();
  await expect(page.getByTestId('new-key-secret')).toHaveCount(1);
  const id = await page.getByTestId('new-key-id').textContent();
  const secret = await page.getByTestId('new-key-secret').textContent();
  const post = () =>
    request.post('/ingest/sensors', {
      data: JSON.stringify({ guid: 'browser-key-sensor', ts: Math.floor(Date.now() / 1000), temp: 1.5 }) + '\n',
      headers: { authorization: `Bearer ${id}:${secret}` },
    });
  expect((await post()).status()).toBe(200);
  await page.getByTestId(`key-${id}`).getByRole('button', { name: 'Revoke' }).click();
  await expect(page.getByTestId('admin-status')).toHaveText('Key revoked.');
  await expect(page.getByTestId(`key-${id}`)).toContainText('revoked');
  expect((await post()).status()).toBe(401);
});

import { chromium, type FullConfig } from '@playwright/test';

// Signs in once as the admin that ./scripts/test configured, through the
// sign-in form, and keeps the session cookie for every test.
export const adminState = '.auth/admin.json';

export default async function signIn(config: FullConfig) {
  const { baseURL, launchOptions } = config.projects[0].use;
  const password = process.env.PULSEBOARD_E2E_ADMIN_PASSWORD;
  if (!password) throw new Error('PULSEBOARD_E2E_ADMIN_PASSWORD is not set (./scripts/test sets it)');
  const browser = await chromium.launch(launchOptions);
  const page = await browser.newPage({ baseURL });
  await page.goto('/login');
  await page.getByTestId('username').fill(process.env.PULSEBOARD_E2E_ADMIN_USER ?? 'admin');
  await page.getByTestId('password').fill(password);
  await page.getByTestId('sign-in').click();
  await page.waitForURL((url) => url.pathname === '/');
  await page.context().storageState({ path: adminState });
  await browser.close();
}

/**
 * The demo tenant of `pnpm start`: an institution whose member applies for the tutor, the market's
 * approval (the tutor creates the tenant, its storage and its admin), then a course with one document
 * uploaded by the admin. A second run finds the tenant at the market and leaves it as it is.
 */
import { call } from '@mt-paas/test-env/processes';
import type { MarketDriver } from './market.js';
import type { ServiceSecrets } from './stack.js';
import { ensureAdminPassword } from './tutor-admin.js';
import { tutorClient } from './tutor-client.js';

export const DEMO = {
  tenantId: 'demo_univ',
  institutionName: 'Demo University',
  email: 'admin@demo-univ.example',
  memberName: 'Demo Admin',
  plan: 'professional',
  course: { title: 'Plant Biology 101', description: 'How plants turn light into sugar.' },
  document: {
    title: 'photosynthesis.md',
    content: `# Photosynthesis

Photosynthesis takes place in the chloroplasts of plant cells. Chlorophyll absorbs mostly red and blue
light and reflects green light, which is why leaves look green.

The light-dependent reactions in the thylakoid membranes split water and release oxygen. The Calvin
cycle in the stroma fixes carbon dioxide into glucose, using the ATP and NADPH that the light reactions made.
`,
  },
  question: 'Why do leaves look green?',
} as const;

export interface DemoTenant {
  tenantId: string;
  userId: number;
  email: string;
  question: string;
}

/**
 * Creates the demo tenant (once), gives its admin `password` and adds the course and its document;
 * resolves when the tutor can answer about it.
 */
export async function provisionDemo(
  market: MarketDriver,
  tutorUrl: string,
  secrets: ServiceSecrets,
  password: string,
): Promise<DemoTenant> {
  const existing = await market.findTenant(secrets.serviceId, DEMO.tenantId);
  let userId: number;
  if (existing === undefined) {
    const onboarded = await market.onboard({
      serviceId: secrets.serviceId,
      tenantId: DEMO.tenantId,
      institutionName: DEMO.institutionName,
      email: DEMO.email,
      memberName: DEMO.memberName,
      plan: DEMO.plan,
      kind: 'demo',
    });
    userId = onboarded.userId;
  } else {
    const { users } = await call<{ users: Array<{ id: number; email: string }> }>(
      `${market.url}/sim/v1/users`,
    );
    const user = users.find((candidate) => candidate.email === DEMO.email);
    if (user === undefined) {
      throw new Error(`the market knows ${DEMO.tenantId} but not ${DEMO.email}; run with --fresh`);
    }
    userId = user.id;
  }
  // the market marks the application completed once the tutor has answered the provision request
  const { applications } = await call<{ applications: Array<{ id: number; tenantId: string }> }>(
    `${market.url}/sim/v1/applications`,
  );
  const application = applications.find((candidate) => candidate.tenantId === DEMO.tenantId);
  if (application === undefined) throw new Error(`the market has no application for ${DEMO.tenantId}`);
  await waitFor(async () => (await market.application(application.id)).status === 'completed', {
    what: `the tutor to create tenant ${DEMO.tenantId}`,
  });

  const client = tutorClient(tutorUrl, DEMO.tenantId);
  await ensureAdminPassword(client, secrets.superadminKey, DEMO.email, password);
  await client.login(DEMO.email, password);
  const courses = (await client.listCourses()) as Array<{ id: string; title: string }>;
  if (!courses.some((course) => course.title === DEMO.course.title)) {
    const course = await client.createCourse(DEMO.course);
    await client.uploadDocument(course.id, DEMO.document);
  }
  return { tenantId: DEMO.tenantId, userId, email: DEMO.email, question: DEMO.question };
}

/** Polls `check` every 200 ms until it is true; throws after `timeoutMs` naming what it waited for. */
export async function waitFor(
  check: () => Promise<boolean>,
  { what, timeoutMs = 60_000 }: { what: string; timeoutMs?: number },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`,
  );
}

/** The requests the demo makes, each with what it shows. Used by `pnpm demo` and by the demo's test. */

export interface WalkthroughStep {
  /** What this request shows. */
  title: string;
  method: 'GET' | 'POST';
  path: string;
  tenant?: string;
  body?: unknown;
  /** Send the request this many times at once; `statuses` counts the answers. */
  repeat?: number;
  /** The status the step expects (for a repeated step: at least one answer has it). */
  expect: number;
  statuses?: Record<number, number>;
  status?: number;
  response?: unknown;
}

const NOTES = {
  univ_8: [
    {
      title: 'Row mode',
      body: 'Row mode keeps every tenant in shared tables guarded by row-level security.',
    },
    {
      title: 'Schema mode',
      body: 'Schema mode gives each tenant its own Postgres schema named t_ and the tenant id.',
    },
  ],
  demo_7: [{ title: 'Welcome', body: 'Demo College uses the free plan with twelve requests per minute.' }],
};

export function walkthroughSteps(): WalkthroughStep[] {
  return [
    { title: 'health needs no tenant', method: 'GET', path: '/health', expect: 200 },
    ...NOTES.univ_8.map((note) => ({
      title: `univ_8 writes a note (${note.title})`,
      method: 'POST' as const,
      path: '/notes',
      tenant: 'univ_8',
      body: note,
      expect: 201,
    })),
    {
      title: 'demo_7 writes a note',
      method: 'POST',
      path: '/notes',
      tenant: 'demo_7',
      body: NOTES.demo_7[0],
      expect: 201,
    },
    {
      title: 'univ_8 sees only its own notes (2)',
      method: 'GET',
      path: '/notes',
      tenant: 'univ_8',
      expect: 200,
    },
    { title: 'demo_7 sees only its own note (1)', method: 'GET', path: '/notes?tenant=demo_7', expect: 200 },
    {
      title: "univ_8 asks the local LLM, answered from univ_8's notes only",
      method: 'GET',
      path: `/ask?q=${encodeURIComponent('What does schema mode give each tenant?')}`,
      tenant: 'univ_8',
      expect: 200,
    },
    {
      title: 'demo_7 asks the same question: its own notes do not answer it',
      method: 'GET',
      path: `/ask?q=${encodeURIComponent('What does schema mode give each tenant?')}`,
      tenant: 'demo_7',
      expect: 200,
    },
    {
      title: 'the professional plan has quizzes',
      method: 'GET',
      path: '/quiz',
      tenant: 'univ_8',
      expect: 200,
    },
    { title: 'the free plan has not', method: 'GET', path: '/quiz', tenant: 'demo_7', expect: 403 },
    {
      title: 'a suspended tenant is refused',
      method: 'GET',
      path: '/notes',
      tenant: 'closed_u',
      expect: 403,
    },
    {
      title: 'an unknown tenant is refused',
      method: 'GET',
      path: '/notes',
      tenant: 'nobody_here',
      expect: 404,
    },
    { title: 'no tenant at all', method: 'GET', path: '/notes', expect: 400 },
    {
      title: 'an id outside the grammar never reaches the database',
      method: 'GET',
      path: '/notes',
      tenant: "x'; DROP TABLE notes; --",
      expect: 400,
    },
    {
      title: "a body naming another tenant is refused (seed 004's body guard)",
      method: 'POST',
      path: '/notes',
      tenant: 'univ_8',
      body: { title: 'sneaky', body: 'write into demo_7', tenantId: 'demo_7' },
      expect: 403,
    },
    {
      title: 'demo_7 sends 20 requests at once: the free plan (12 rpm) admits some, refuses the rest',
      method: 'GET',
      path: '/notes',
      tenant: 'demo_7',
      repeat: 20,
      expect: 429,
    },
  ];
}

/** Runs every step against `baseUrl` and fills in `status` and `response`. */
export async function runWalkthrough(baseUrl: string): Promise<WalkthroughStep[]> {
  const steps = walkthroughSteps();
  for (const step of steps) {
    if (step.repeat !== undefined) {
      const answers = await Promise.all(Array.from({ length: step.repeat }, () => send(baseUrl, step)));
      step.statuses = {};
      for (const answer of answers) step.statuses[answer.status] = (step.statuses[answer.status] ?? 0) + 1;
      const wanted = answers.find((answer) => answer.status === step.expect) ?? answers[0]!;
      step.status = wanted.status;
      step.response = wanted.response;
      continue;
    }
    const answer = await send(baseUrl, step);
    step.status = answer.status;
    step.response = answer.response;
  }
  return steps;
}

async function send(baseUrl: string, step: WalkthroughStep): Promise<{ status: number; response: unknown }> {
  {
    const headers: Record<string, string> = {};
    if (step.tenant !== undefined && !step.path.includes('?tenant=')) headers['x-tenant-id'] = step.tenant;
    if (step.body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(baseUrl + step.path, {
      method: step.method,
      headers,
      ...(step.body === undefined ? {} : { body: JSON.stringify(step.body) }),
    });
    const text = await response.text();
    try {
      return { status: response.status, response: JSON.parse(text) };
    } catch {
      return { status: response.status, response: text };
    }
  }
}

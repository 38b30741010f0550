/**
 * `pnpm demo`: starts the demo service on embedded defaults, walks through what mt-paas does for a
 * vendor (isolation, plans, refusals, rate limits, per-tenant AI), prints each step and exits.
 * `pnpm demo -- --serve` keeps the service running for your own requests.
 */
import { startDemoService } from './demo-service.js';
import { runWalkthrough } from './walkthrough.js';

const serve = process.argv.includes('--serve');
const portArgument = process.argv.find((argument) => argument.startsWith('--port='));
const port = portArgument === undefined ? (serve ? 3000 : 0) : Number(portArgument.slice('--port='.length));

console.log('mt-paas demo — embedded defaults: PGlite (row mode + RLS), in-process limits, local LLM\n');
const service = await startDemoService({ port });
console.log(`service listening on ${service.url}\n`);

const steps = await runWalkthrough(service.url);
let unexpected = 0;
for (const step of steps) {
  const ok = step.status === step.expect;
  if (!ok) unexpected += 1;
  const who = step.tenant === undefined ? '' : ` [${step.tenant}]`;
  console.log(`${ok ? '✓' : '✗'} ${step.title}`);
  console.log(`    ${step.method} ${step.path}${who} → ${step.status}`);
  const shown =
    step.statuses === undefined ? step.response : { statuses: step.statuses, example: step.response };
  console.log(`    ${JSON.stringify(shown)}`);
}
console.log(`\n${steps.length - unexpected} of ${steps.length} steps answered as expected.`);

if (serve) {
  console.log(
    `\nServing on ${service.url} — try: curl -H 'X-Tenant-ID: univ_8' ${service.url}/notes  (Ctrl-C stops)`,
  );
  const stop = async () => {
    await service.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} else {
  await service.close();
  process.exitCode = unexpected === 0 ? 0 : 1;
}

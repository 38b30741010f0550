import { randomUUID } from 'node:crypto';
import { MtPaasError, tryCurrentTenant } from '@mt-paas/context';
import { z } from 'zod';
import { type ControlLogger, defaultLogger, errorMessage } from './logger.js';

/** ADL verbs (http://adlnet.gov/expapi/verbs/…) a short verb name maps to. `voided` is left out: a voiding statement's object must be a StatementRef, not an activity. */
export const ADL_VERBS: readonly string[] = [
  'answered',
  'asked',
  'attempted',
  'attended',
  'commented',
  'completed',
  'exited',
  'experienced',
  'failed',
  'imported',
  'initialized',
  'interacted',
  'launched',
  'mastered',
  'passed',
  'preferred',
  'progressed',
  'registered',
  'responded',
  'resumed',
  'scored',
  'shared',
  'suspended',
  'terminated',
];

/** An xAPI 1.0.3 statement as control builds it. */
export interface XapiStatement {
  id: string;
  actor: { objectType: 'Agent'; account: { homePage: string; name: string } };
  verb: { id: string; display: Record<string, string> };
  object: { objectType: 'Activity'; id: string; definition?: { name: Record<string, string> } };
  result?: {
    success?: boolean;
    completion?: boolean;
    response?: string;
    duration?: string;
    score?: { scaled?: number; raw?: number; min?: number; max?: number };
    extensions?: Record<string, unknown>;
  };
  context: { platform: string; extensions: Record<string, unknown> };
  timestamp: string;
}

/** What a service logs (the seed's `log_activity(verb=, object=, result=)`). */
export interface ActivityInput {
  /** An ADL verb name (`asked`, `completed`, …) or an absolute verb IRI. */
  verb: string;
  /** The activity: a name (`ai_tutor`, made an IRI under the service URL) or an absolute IRI. */
  object: string;
  /**
   * xAPI result fields (`success`, `completion`, `response`, `duration`, `score`) are kept; any other key
   * (`message_length`) becomes a result extension `<serviceUrl>/xapi/result/<key>`.
   */
  result?: Record<string, unknown>;
  /** @default the current request's user (`runWithTenant` context), else `anonymous` */
  userId?: string;
  /** @default the current request's tenant */
  tenantId?: string;
}

/** Options of {@link createActivityLogger}. */
export interface ActivityLoggerOptions {
  /** The LRS xAPI endpoint (`logging.activity_log.endpoint`); statements go to `<endpoint>/statements`. Off when omitted. */
  endpoint?: string;
  /** Basic-auth user (`logging.activity_log.username`). */
  username?: string;
  /** Basic-auth password (`logging.activity_log.password`). */
  password?: string;
  /** The service's public URL: the actor account's `homePage` and the base of activity IRIs. */
  serviceUrl: string;
  /** `service.id`: the statement context's `platform`. */
  serviceId: string;
  /** Statements kept waiting at most; past it new statements are dropped (and counted). @default 1_000 */
  maxBuffer?: number;
  /** Statements per POST. @default 50 */
  batchSize?: number;
  /** How often the buffer is sent. @default 5_000 */
  flushIntervalMs?: number;
  /** Tries per batch on network errors, 429 and 5xx. @default 3 */
  maxAttempts?: number;
  /** First retry delay (doubles). @default 500 */
  retryDelayMs?: number;
  /** Per POST. @default 10_000 */
  timeoutMs?: number;
  /** Counts for metrics. */
  onOutcome?: (
    outcome: 'sent' | 'dropped_buffer_full' | 'dropped_rejected' | 'dropped_failed',
    count: number,
  ) => void;
  fetch?: typeof fetch;
  logger?: ControlLogger;
  /** @default () => new Date() */
  now?: () => Date;
}

/** The xAPI activity log. */
export interface ActivityLogger {
  /** `false` when no endpoint is configured: `log` does nothing. */
  readonly enabled: boolean;
  /**
   * Builds a statement and buffers it (returns at once, never awaits the LRS). Returns the statement,
   * or `undefined` when off or dropped because the buffer is full.
   * @throws MtPaasError `INVALID_REQUEST` for an unknown verb or an object that is neither a name nor an IRI.
   */
  log(input: ActivityInput): XapiStatement | undefined;
  /** Sends everything buffered now. */
  flush(): Promise<void>;
  start(): void;
  /** Stops the timer and sends what is buffered (one round of tries). */
  stop(): Promise<void>;
  readonly stats: { buffered: number; sent: number; dropped: number };
}

const RESULT_FIELDS = new Set(['success', 'completion', 'response', 'duration', 'score']);
/** The xAPI 1.0.3 rules for the result's own fields (§2.4.5), checked when the statement is built. */
const resultFieldsSchema = z.object({
  success: z.boolean().optional(),
  completion: z.boolean().optional(),
  response: z.string().optional(),
  duration: z
    .string()
    .regex(
      /^P(?!$)(\d+(?:\.\d+)?Y)?(\d+(?:\.\d+)?M)?(\d+(?:\.\d+)?W)?(\d+(?:\.\d+)?D)?(T(?=\d)(\d+(?:\.\d+)?H)?(\d+(?:\.\d+)?M)?(\d+(?:\.\d+)?S)?)?$/,
      'an ISO 8601 duration such as PT1M30S',
    )
    .optional(),
  score: z
    .strictObject({
      scaled: z.number().min(-1).max(1).optional(),
      raw: z.number().optional(),
      min: z.number().optional(),
      max: z.number().optional(),
    })
    .refine(
      (score) => score.min === undefined || score.max === undefined || score.min < score.max,
      'min must be below max',
    )
    .refine(
      (score) =>
        score.raw === undefined ||
        ((score.min === undefined || score.raw >= score.min) &&
          (score.max === undefined || score.raw <= score.max)),
      'raw must lie within min … max',
    )
    .optional(),
});
const ABSOLUTE_IRI = /^[a-z][a-z0-9+.-]*:\/\/[^\s]+$/i;
const OBJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9._~/-]{0,199}$/;
const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,99}$/;

/**
 * The seed's `log_activity()` as xAPI 1.0.3 statements to an LRS: built on the request (actor = the
 * request's user as an account of the service, tenant in the context extensions, ADL verb IRIs, a UUID
 * statement id, timestamp), buffered (bounded: a full buffer drops and counts, never blocks), sent in
 * batches (`POST <endpoint>/statements`, `X-Experience-API-Version: 1.0.3`, basic auth) with retries.
 */
export function createActivityLogger(options: ActivityLoggerOptions): ActivityLogger {
  const logger = options.logger ?? defaultLogger();
  const now = options.now ?? (() => new Date());
  const maxBuffer = options.maxBuffer ?? 1_000;
  const batchSize = options.batchSize ?? 50;
  const flushIntervalMs = options.flushIntervalMs ?? 5_000;
  const maxAttempts = options.maxAttempts ?? 3;
  const retryDelayMs = options.retryDelayMs ?? 500;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const send = options.fetch ?? globalThis.fetch;
  const serviceUrl = options.serviceUrl.replace(/\/+$/, '');
  if (!ABSOLUTE_IRI.test(serviceUrl)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `The activity log needs the service's absolute URL (got "${options.serviceUrl}"), e.g. https://tutor.example.`,
    );
  }
  const endpoint = options.endpoint?.replace(/\/+$/, '');
  const authorization =
    options.username === undefined
      ? undefined
      : `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64')}`;
  const buffer: XapiStatement[] = [];
  const stats = { buffered: 0, sent: 0, dropped: 0 };
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<void> | undefined;
  let failing = false;

  const count = (outcome: Parameters<NonNullable<ActivityLoggerOptions['onOutcome']>>[0], n: number) => {
    if (outcome === 'sent') stats.sent += n;
    else stats.dropped += n;
    options.onOutcome?.(outcome, n);
  };

  function verbOf(verb: string): XapiStatement['verb'] {
    if (ABSOLUTE_IRI.test(verb)) {
      const display = verb.split(/[/#]/).filter(Boolean).pop() ?? verb;
      return { id: verb, display: { 'en-US': display } };
    }
    if (!ADL_VERBS.includes(verb)) {
      throw new MtPaasError(
        'INVALID_REQUEST',
        `"${verb}" is not an ADL verb; use one of ${ADL_VERBS.join(', ')} or an absolute verb IRI.`,
        { details: { verb } },
      );
    }
    return { id: `http://adlnet.gov/expapi/verbs/${verb}`, display: { 'en-US': verb } };
  }

  function objectOf(object: string): XapiStatement['object'] {
    if (ABSOLUTE_IRI.test(object)) return { objectType: 'Activity', id: object };
    if (!OBJECT_NAME.test(object) || object.includes('..') || object.includes('//')) {
      throw new MtPaasError(
        'INVALID_REQUEST',
        `The activity "${object}" is neither an absolute IRI nor a name of letters, digits and ._~/-; pass e.g. "ai_tutor".`,
      );
    }
    return {
      objectType: 'Activity',
      id: `${serviceUrl}/activities/${object}`,
      definition: { name: { 'en-US': object } },
    };
  }

  function resultOf(result: Record<string, unknown>): XapiStatement['result'] {
    const fields = resultFieldsSchema.safeParse(
      Object.fromEntries(Object.entries(result).filter(([key]) => RESULT_FIELDS.has(key))),
    );
    if (!fields.success) {
      const issue = fields.error.issues[0];
      throw new MtPaasError(
        'INVALID_REQUEST',
        `The activity result's "${issue?.path.join('.') ?? 'result'}" is not valid xAPI (${issue?.message ?? 'invalid'}); see xAPI 1.0.3 §2.4.5.`,
        { details: { field: issue?.path.join('.') } },
      );
    }
    const out: NonNullable<XapiStatement['result']> = {};
    const extensions: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(result)) {
      if (value === undefined) continue;
      if (RESULT_FIELDS.has(key)) {
        (out as Record<string, unknown>)[key] = value;
      } else {
        if (!KEY_NAME.test(key)) {
          throw new MtPaasError(
            'INVALID_REQUEST',
            `The result key "${key}" must be letters, digits and ._~-.`,
          );
        }
        extensions[`${serviceUrl}/xapi/result/${key}`] = value;
      }
    }
    if (Object.keys(extensions).length > 0) out.extensions = extensions;
    return out;
  }

  function build(input: ActivityInput): XapiStatement {
    const context = tryCurrentTenant();
    const tenantId = input.tenantId ?? context?.tenantId;
    const userId = input.userId ?? context?.user?.id ?? 'anonymous';
    const statement: XapiStatement = {
      id: randomUUID(),
      actor: { objectType: 'Agent', account: { homePage: serviceUrl, name: userId } },
      verb: verbOf(input.verb),
      object: objectOf(input.object),
      context: {
        platform: options.serviceId,
        extensions: tenantId === undefined ? {} : { [`${serviceUrl}/xapi/extensions/tenant`]: tenantId },
      },
      timestamp: now().toISOString(),
    };
    if (input.result !== undefined) statement.result = resultOf(input.result);
    return statement;
  }

  async function post(batch: XapiStatement[]): Promise<'sent' | 'rejected' | 'failed'> {
    let lastError = '';
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      try {
        const response = await send(`${endpoint}/statements`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-experience-api-version': '1.0.3',
            ...(authorization === undefined ? {} : { authorization }),
          },
          body: JSON.stringify(batch),
          signal: AbortSignal.timeout(timeoutMs),
        });
        await response.body?.cancel().catch(() => {});
        if (response.ok) return 'sent';
        lastError = `HTTP ${response.status}`;
        // A statement the LRS refuses will be refused again: drop the batch.
        if (response.status === 400 || response.status === 409 || response.status === 413) {
          logger.error(
            { status: response.status, statements: batch.length },
            'LRS rejected xAPI statements; dropped',
          );
          return 'rejected';
        }
      } catch (error) {
        lastError = errorMessage(error);
      }
      if (attempt < maxAttempts) {
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs * 2 ** (attempt - 1)).unref?.());
      }
    }
    if (!failing) {
      failing = true;
      logger.warn(
        { err: lastError },
        'LRS unreachable; xAPI statements dropped after retries (logged once until it recovers)',
      );
    }
    return 'failed';
  }

  async function drain(): Promise<void> {
    while (buffer.length > 0) {
      const batch = buffer.splice(0, batchSize);
      stats.buffered = buffer.length;
      const outcome = await post(batch);
      if (outcome === 'sent') {
        if (failing) logger.info({}, 'LRS reachable again');
        failing = false;
        count('sent', batch.length);
      } else {
        count(outcome === 'rejected' ? 'dropped_rejected' : 'dropped_failed', batch.length);
      }
    }
  }

  function flush(): Promise<void> {
    if (endpoint === undefined) return Promise.resolve();
    sending ??= drain().finally(() => {
      sending = undefined;
    });
    return sending;
  }

  return {
    enabled: endpoint !== undefined,
    log(input) {
      if (endpoint === undefined) return undefined;
      const statement = build(input);
      if (buffer.length >= maxBuffer) {
        count('dropped_buffer_full', 1);
        return undefined;
      }
      buffer.push(statement);
      stats.buffered = buffer.length;
      if (buffer.length >= batchSize && sending === undefined) void flush();
      return statement;
    },
    flush: async () => {
      // A flush already running may have started before the newest statements: run again until empty.
      while (endpoint !== undefined && (sending !== undefined || buffer.length > 0)) await flush();
    },
    start() {
      if (endpoint === undefined || timer !== undefined) return;
      timer = setInterval(() => void flush(), flushIntervalMs);
      timer.unref?.();
    },
    async stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      while (endpoint !== undefined && (sending !== undefined || buffer.length > 0)) await flush();
    },
    get stats() {
      return { ...stats };
    },
  };
}

import { z } from 'zod';

/** A non-empty string (after trimming surrounding whitespace). */
export const nonEmptyString = z.string().trim().min(1, { error: 'must not be empty' });

/** A positive whole number. */
export const positiveInt = z
  .number({ error: 'expected a number' })
  .int({ error: 'expected a whole number' })
  .positive({
    error: 'must be greater than 0',
  });

/** A whole number >= 0. */
export const nonNegativeInt = z
  .number({ error: 'expected a number' })
  .int({ error: 'expected a whole number' })
  .min(0, {
    error: 'must be 0 or more',
  });

/** An absolute http(s) URL. */
export const httpUrl = z.url({
  protocol: /^https?$/,
  error: 'expected an absolute http(s) URL such as "https://market.example.com/api/v1"',
});

/** A `postgres://` / `postgresql://` connection string. */
export const postgresUrl = z
  .string()
  .trim()
  .regex(/^postgres(?:ql)?:\/\/\S+$/, {
    error: 'expected a Postgres connection string such as "postgresql://user:password@host:5432/dbname"',
  });

const UNIT_SECONDS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 } as const;
const DURATION_PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/** The unit a duration field is stored in (and named after: `heartbeatIntervalSeconds`). */
export type DurationUnit = 'seconds' | 'minutes' | 'hours';
const UNIT_IN_SECONDS: Record<DurationUnit, number> = { seconds: 1, minutes: 60, hours: 3600 };

/**
 * A duration stored as a number in `unit`. The YAML may give a plain number (in `unit`) or a
 * string with a suffix (`"90s"`, `"5m"`, `"24h"`, `"7d"`, `"500ms"`), converted to `unit`.
 */
export function duration(unit: DurationUnit) {
  return z
    .union([z.number(), z.string()], {
      error: `expected a number of ${unit} or a duration such as "90s", "5m", "24h"`,
    })
    .transform((value, context) => {
      let result: number;
      if (typeof value === 'number') {
        result = value;
      } else {
        const match = DURATION_PATTERN.exec(value.trim());
        if (!match) {
          context.addIssue({
            code: 'custom',
            message: `expected a number of ${unit} or a duration such as "90s", "5m", "24h" (got "${value}")`,
          });
          return z.NEVER;
        }
        const seconds = Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS];
        result = seconds / UNIT_IN_SECONDS[unit];
      }
      if (!Number.isFinite(result) || result <= 0) {
        context.addIssue({ code: 'custom', message: `must be a duration greater than 0 ${unit}` });
        return z.NEVER;
      }
      return result;
    });
}

/** Compiles a regular expression given as a string; a compile error becomes a validation issue. */
export const regexString = z.string().superRefine((value, context) => {
  try {
    new RegExp(value);
  } catch (error) {
    context.addIssue({
      code: 'custom',
      message: `is not a valid regular expression: ${(error as Error).message}`,
    });
  }
});

/** `snake_case` → `camelCase`, used for the documented key mapping (`api_url` → `apiUrl`). */
export function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
}

/** `camelCase` → `snake_case`. */
export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

import { pino } from 'pino';

/** The logger control writes to: pino's signature (`logger.warn({ err }, 'message')`). Pass the pipeline's logger. */
export interface ControlLogger {
  debug(object: Record<string, unknown>, message: string): void;
  info(object: Record<string, unknown>, message: string): void;
  warn(object: Record<string, unknown>, message: string): void;
  error(object: Record<string, unknown>, message: string): void;
}

/** The default logger: pino at `info`, named `mt-paas-control`. */
export function defaultLogger(): ControlLogger {
  return pino({ name: 'mt-paas-control', level: 'info' });
}

/** Message of an unknown thrown value, for logs (never a stack, never a body). */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

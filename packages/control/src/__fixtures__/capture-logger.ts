import type { ControlLogger } from '../logger.js';

export interface CapturedLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  object: Record<string, unknown>;
}

/** A logger that keeps every line (for "logged once per outage" checks). */
export function captureLogger(): ControlLogger & {
  lines: CapturedLine[];
  at(level: CapturedLine['level']): CapturedLine[];
} {
  const lines: CapturedLine[] = [];
  const write = (level: CapturedLine['level']) => (object: Record<string, unknown>, message: string) => {
    lines.push({ level, message, object });
  };
  return {
    lines,
    at: (level) => lines.filter((line) => line.level === level),
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
  };
}

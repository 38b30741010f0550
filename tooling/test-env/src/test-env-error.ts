/**
 * Thrown when the test environment cannot give a test what it asked for (a missing server under
 * `MT_PAAS_REQUIRE_SERVICES=1`, a helper used outside an `int:` project, a failed template setup).
 * The message always says what to do next.
 */
export class TestEnvError extends Error {
  override readonly name = 'TestEnvError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

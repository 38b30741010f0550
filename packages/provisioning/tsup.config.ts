import { packageConfig } from '@mt-paas/tsup-config';

export default packageConfig({ entry: ['src/index.ts', 'src/cli.ts', 'src/testing.ts'] });

import { packageConfig } from '@mt-paas/tsup-config';

export default packageConfig();

import { describeQuotaStore, describeRateLimitStore } from './__fixtures__/store-suites.js';
import { createMemoryQuotaStore } from './quota.js';
import { createMemoryRateLimitStore } from './rate-limiter.js';

describeRateLimitStore('in-process', () => createMemoryRateLimitStore());
describeQuotaStore('in-process', () => createMemoryQuotaStore());

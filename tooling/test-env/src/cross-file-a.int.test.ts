import { crossFileSuite } from './cross-file-suite.js';

// One half of a two-file proof: this file and cross-file-b.int.test.ts each get their own database and
// Redis prefix from one shared template (see cross-file-suite.ts).
crossFileSuite('a');

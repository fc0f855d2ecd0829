export type { RefBatch, RefResult } from './batch.js';
export { checkBatch, groupAdvantages, numSeqs, numTokens, seqLengths } from './batch.js';
export { grpoRef, GRPO_DEFAULTS, type GrpoParams } from './grpo.js';
export { dapoRef, dapoShapedRewards, DAPO_DEFAULTS, type DapoParams } from './dapo.js';
export { gspoRef, GSPO_DEFAULTS, type GspoParams } from './gspo.js';
export { arbRefBatch, type ArbRefBatchOptions } from './arbitrary.js';
export { checkGradFD, type FdOptions, type FdReport } from './fd.js';
export { clipG, maxG, minG, withBranchTrace } from './ops.js';

/**
 * Property tests run with a fixed fast-check seed so CI is reproducible; set FC_SEED=random (or a
 * number) to explore other cases locally.
 */
import fc from 'fast-check';

const seed = process.env.FC_SEED;
if (seed !== 'random') fc.configureGlobal({ seed: seed ? Number(seed) : 20261129 });

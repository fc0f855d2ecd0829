/** stdlib objectives the device back end runs, and those it cannot run yet with the reason (GPU tests skip them, saying why). */
import { deviceUnsupported } from '../../compiler/lower-to-device.js';
import { compile } from '../../src/objective.js';
import { objectiveNames } from '../../src/stdlib.js';

const reasons = new Map(objectiveNames().map((n) => [n, deviceUnsupported(compile(n).program)] as const));

export const onDevice: readonly string[] = objectiveNames().filter((n) => reasons.get(n) === null);
/** [objective, why it has no device kernels] */
export const notOnDevice: readonly (readonly [string, string])[] = objectiveNames().flatMap((n) => {
  const why = reasons.get(n);
  return why ? [[n, why] as const] : [];
});

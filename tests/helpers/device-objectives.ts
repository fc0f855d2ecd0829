/** stdlib objectives the device back end runs, and those it cannot run yet (GPU tests skip them, with the reason). */
import { deviceUnsupported } from '../../compiler/lower-to-device.js';
import { compile } from '../../src/objective.js';
import { objectiveNames } from '../../src/stdlib.js';

export const onDevice: readonly string[] = objectiveNames().filter(
  (n) => deviceUnsupported(compile(n).program) === null,
);
export const notOnDevice: readonly string[] = objectiveNames().filter((n) => !onDevice.includes(n));

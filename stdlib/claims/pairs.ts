/** What the preference-method claims share: the fixture folder and the preference-pair assumption. */

/** Catalog-only objectives (variants that exist to state a claim, not stdlib methods). */
export const OBJ = 'tests/equivalences/objectives';

/** A preference pair: a group of 2 sequences, exactly one chosen. */
export const PAIRS: readonly string[] = ['group_size=2', 'sum(f32(chosen) per group) == 1'];

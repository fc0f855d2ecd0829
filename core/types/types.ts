/**
 * Value types: an element type and a level. Levels nest vocab ⊂ token ⊂ seq ⊂ group ⊂ batch; a
 * coarser value broadcasts implicitly to a finer level, the other way needs a reduction. `vocab`
 * is the inner axis of a token (one value per token and vocabulary entry: `token x vocab` in the
 * source); it reduces only to `token`.
 */
export type Level = 'vocab' | 'token' | 'seq' | 'group' | 'batch';
export type DType = 'f32' | 'i32' | 'bool';

export interface ValueType {
  readonly dtype: DType;
  readonly level: Level;
}

export const LEVELS: readonly Level[] = ['vocab', 'token', 'seq', 'group', 'batch'];
export const DTYPES: readonly DType[] = ['f32', 'i32', 'bool'];

/** 0 = finest (vocab) … 4 = coarsest (batch). */
export function levelRank(l: Level): number {
  return LEVELS.indexOf(l);
}

export function isLevel(s: string): s is Level {
  return (LEVELS as readonly string[]).includes(s);
}

export function isDType(s: string): s is DType {
  return (DTYPES as readonly string[]).includes(s);
}

/** The finer of two levels: the level of an elementwise result. */
export function finer(a: Level, b: Level): Level {
  return levelRank(a) <= levelRank(b) ? a : b;
}

export function isCoarserOrEqual(a: Level, than: Level): boolean {
  return levelRank(a) >= levelRank(than);
}

/** The type as the IR text writes it: `f32[token]`, `f32[vocab]` (parsed back by core/ir/parse.ts). */
export function showType(t: ValueType): string {
  return `${t.dtype}[${t.level}]`;
}

/** A level as the source writes it (`token x vocab` for the vocabulary axis). */
export function showLevel(l: Level): string {
  return l === 'vocab' ? 'token x vocab' : l;
}

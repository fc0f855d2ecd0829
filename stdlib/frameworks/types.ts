/** One row of the framework map (stdlib/frameworks.ts). */
export type Framework = 'verl' | 'TRL' | 'Liger' | 'OpenRLHF';

export interface FrameworkName {
  readonly framework: Framework;
  /** The setting as the framework's user writes it. */
  readonly setting: string;
  /** Where the formula was read: repository@commit and file (or the research section that did). */
  readonly readFrom: string;
  readonly objective: string;
  readonly set?: Readonly<Record<string, number>>;
  /** Catalog claims relating this name to others (ids in stdlib/claims). */
  readonly claims?: readonly string[];
  readonly note?: string;
}

/** The snapshots read (../shared/research/frameworks-2026.md). */
export const SNAPSHOT = {
  verl: 'verl-project/verl@1dda039b',
  trl: 'huggingface/trl@f2cd5771',
  liger: 'linkedin/Liger-Kernel@ead96b61',
  openrlhf: 'OpenRLHF/OpenRLHF@3c3be623',
} as const;

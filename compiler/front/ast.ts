/** The AST of a Credo module. Every node has a span; names keep their own span for messages. */
import type { Span } from '../../core/source/source-file.js';

export interface Ident {
  readonly text: string;
  readonly span: Span;
}

export type Expr =
  | { readonly kind: 'num'; readonly value: number; readonly span: Span }
  | { readonly kind: 'bool'; readonly value: boolean; readonly span: Span }
  | { readonly kind: 'name'; readonly name: Ident; readonly member?: Ident; readonly span: Span }
  | {
      readonly kind: 'call';
      readonly callee: Ident;
      /** `module.fn(...)` for imported defs. */
      readonly member?: Ident;
      readonly args: readonly Expr[];
      readonly per?: Ident;
      /** Keyed reduction: `sum(x per group by key)`. */
      readonly by?: Expr;
      readonly where?: Expr;
      readonly span: Span;
      /** Span of the opening parenthesis, for arity messages. */
      readonly parenSpan: Span;
    }
  | { readonly kind: 'unary'; readonly op: '-' | 'not'; readonly operand: Expr; readonly span: Span }
  | {
      readonly kind: 'binary';
      readonly op: BinaryOp;
      readonly left: Expr;
      readonly right: Expr;
      readonly opSpan: Span;
      readonly span: Span;
    };

export type BinaryOp = '+' | '-' | '*' | '/' | '^' | '<' | '<=' | '>' | '>=' | '==' | '!=' | 'and' | 'or';

export type Item =
  | { readonly kind: 'objective'; readonly name: Ident; readonly span: Span }
  | { readonly kind: 'import'; readonly name: Ident; readonly span: Span }
  | { readonly kind: 'param'; readonly name: Ident; readonly value: Expr; readonly span: Span }
  | {
      readonly kind: 'input';
      readonly name: Ident;
      readonly level: Ident;
      /** The inner axis of `token x vocab`. */
      readonly axis?: Ident;
      readonly dtype?: Ident;
      readonly grad?: Span;
      /** `when COND`: the batch may leave the input out where COND (a batch-level bool over params) is false. */
      readonly when?: Expr;
      /** `else FILL`: what a batch that leaves the input out reads (a number or another input). */
      readonly fill?: Expr;
      readonly span: Span;
    }
  | { readonly kind: 'mask'; readonly name: Ident; readonly level: Ident; readonly span: Span }
  | { readonly kind: 'let'; readonly name: Ident; readonly value: Expr; readonly span: Span }
  | {
      readonly kind: 'def';
      readonly name: Ident;
      readonly params: readonly Ident[];
      readonly value: Expr;
      readonly span: Span;
    }
  | { readonly kind: 'loss'; readonly value: Expr; readonly span: Span; readonly keyword: Span }
  | { readonly kind: 'metric'; readonly name: Ident; readonly value: Expr; readonly span: Span }
  /** A condition every batch must meet (`require group_size == 2`): checked before each run. */
  | { readonly kind: 'require'; readonly value: Expr; readonly span: Span; readonly keyword: Span }
  | { readonly kind: 'export'; readonly name: Ident; readonly value: Expr; readonly span: Span };

export interface Module {
  readonly file: import('../../core/source/source-file.js').SourceFile;
  readonly items: readonly Item[];
}

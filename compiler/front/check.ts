/**
 * AST → typed IR. Resolves names in expressions (locals of `def` bodies, module declarations,
 * built-ins, imports), checks levels and element types, inlines `def`s and lowers built-in calls
 * (calls.ts). User mistakes become diagnostics; lowering continues with `null` for the broken part so
 * one pass reports as much as it can without cascades.
 */
import { error, warning, type Diagnostic } from '../../core/diagnostics/diagnostic.js';
import { closest } from '../../core/diagnostics/suggest.js';
import { IrBuilder } from '../../core/ir/build.js';
import { topoSort, type Node } from '../../core/ir/node.js';
import type { BinaryOp } from '../../core/ir/op.js';
import type { InputCondition, InputDecl, ParamDecl, Program, Requirement } from '../../core/ir/program.js';
import type { Span } from '../../core/source/source-file.js';
import { isDType, isLevel, LEVELS, showLevel, showType } from '../../core/types/types.js';
import { BINARY as INTERPRETED, UNARY as INTERPRETED_UNARY } from '../interp/eval.js';
import type { BinaryOp as AstBinaryOp, Expr, Item } from './ast.js';
import { AMBIGUOUS, allBuiltinNames, BUILTIN_VALUES, isFunctionName, type BuiltinValue } from './builtins.js';
import { lowerBuiltinCall } from './calls.js';
import { letsBefore } from './let-order.js';
import type { Decl, Scope } from './resolve.js';
import type { Env, Lowering } from './context.js';
import { vocabIndex } from './vocab.js';

const BINARY: Record<AstBinaryOp, BinaryOp> = {
  '+': 'add',
  '-': 'sub',
  '*': 'mul',
  '/': 'div',
  '^': 'pow',
  '<': 'lt',
  '<=': 'le',
  '>': 'gt',
  '>=': 'ge',
  '==': 'eq',
  '!=': 'ne',
  and: 'and',
  or: 'or',
};

export class Checker implements Lowering {
  readonly b = new IrBuilder();
  readonly diagnostics: Diagnostic[] = [];
  private readonly lets = new Map<string, Node | null | 'busy'>();
  /** Lets of the objective that some expression refers to (for W0602). */
  private readonly usedLets = new Set<string>();
  /** Lowered `def` calls by def and argument nodes (see `inline`). */
  private readonly inlined = new Map<string, Node | null>();
  private readonly inputs: InputDecl[] = [];
  private readonly params: ParamDecl[] = [];
  private maskName: string | null = null;
  /** Inputs `gather` indexes the vocabulary with. */
  private readonly vocabIndexes = new Set<string>();

  constructor(private readonly root: Scope) {}

  markVocabIndex(input: string): void {
    this.vocabIndexes.add(input);
  }

  report(d: Diagnostic): null {
    this.diagnostics.push(d);
    return null;
  }

  /** Lowers the whole objective. Returns no program if any error was reported. */
  run(): Program | undefined {
    const env: Env = { scope: this.root, locals: new Map(), defStack: [] };
    for (const item of this.root.module.items) this.declare(item);
    let loss: Node | null = null;
    const metrics = new Map<string, Node>();
    const exports = new Map<string, Node>();
    const requires: Requirement[] = [];
    const conditions = new Map<string, InputCondition>();
    for (const item of this.root.module.items) {
      if (item.kind === 'let') this.letValue(this.root, item.name.text, item.name.span);
      else if (item.kind === 'loss') loss = loss ?? this.output(item.value, env, 'loss', item.keyword);
      else if (item.kind === 'metric') {
        const n = this.output(item.value, env, `metric \`${item.name.text}\``, item.name.span);
        if (n) metrics.set(item.name.text, n);
      } else if (item.kind === 'export') {
        const n = this.expr(item.value, env);
        if (n) exports.set(item.name.text, n.type.dtype === 'f32' ? n : this.b.cast(n, 'f32'));
      } else if (item.kind === 'require') {
        const r = this.requirement(item, env);
        if (r) requires.push(r);
      } else if (item.kind === 'input' && item.when) {
        const c = this.inputCondition(item, item.when, env);
        if (c) conditions.set(item.name.text, c);
      }
    }
    for (const item of this.root.module.items) {
      if (item.kind === 'let' && !this.usedLets.has(item.name.text) && this.root.decls.get(item.name.text) === item) {
        this.report(
          warning('W0602', `\`${item.name.text}\` is never used`, item.name.span, {
            label: 'defined but not used by the loss, a metric, an export or another let',
            help: 'remove it, or report it with `metric`/`export`',
          }),
        );
      }
    }
    if (loss) this.warnNonFiniteConstants([loss, ...metrics.values(), ...exports.values()]);
    if (this.diagnostics.some((d) => d.severity === 'error') || !loss) return undefined;
    return {
      name: this.root.name,
      graph: this.b.graph,
      inputs: this.inputs.map((i) => ({
        ...i,
        ...(this.vocabIndexes.has(i.name) ? { vocabIndex: true } : {}),
        ...(conditions.has(i.name) ? { when: conditions.get(i.name)! } : {}),
      })),
      params: this.params,
      maskName: this.maskName,
      loss,
      metrics,
      exports,
      requires,
      grads: new Map(),
    };
  }

  /** The level of an input: its word, or `vocab` for `token x vocab`; null after reporting a misuse. */
  private inputLevel(item: Extract<Item, { kind: 'input' }>): string | null {
    const level = item.level.text;
    if (item.axis) {
      if (item.axis.text !== 'vocab') {
        return this.report(
          error('E0202', `\`${item.axis.text}\` is not an axis of a token`, item.axis.span, {
            label: 'expected vocab',
            help: 'the inner axis of a token is its vocabulary: `token x vocab`',
          }),
        );
      }
      if (level !== 'token') {
        return this.report(
          error('E0202', `a ${level}-level input has no vocabulary axis`, item.level.span, {
            label: 'only tokens have one',
            help: 'values over the vocabulary are per token: `token x vocab`',
          }),
        );
      }
      return 'vocab';
    }
    if (level === 'vocab') {
      return this.report(
        error('E0202', 'a vocabulary axis belongs to a token', item.level.span, {
          label: 'write `token x vocab`',
          help: `declare \`input ${item.name.text} : token x vocab\` (one value per token and vocabulary entry)`,
        }),
      );
    }
    return level;
  }

  private declare(item: Item): void {
    if (this.root.decls.get((item as { name?: { text: string } }).name?.text ?? '') !== item) return;
    if (item.kind === 'input') {
      const level = this.inputLevel(item);
      if (level === null) return;
      if (!isLevel(level) || level === 'batch') {
        this.report(
          error('E0202', `\`${level}\` is not a level an input can have`, item.level.span, {
            label: 'expected token, seq or group',
            help: 'scalars that are the same for the whole batch are `param`s',
          }),
        );
        return;
      }
      const dtypeText = item.dtype?.text ?? 'f32';
      if (!isDType(dtypeText)) {
        const s = closest(dtypeText, ['f32', 'i32', 'bool']);
        this.report(
          error('E0303', `unknown element type \`${dtypeText}\``, item.dtype!.span, {
            label: 'expected f32, i32 or bool',
            help: s ? `did you mean \`${s}\`?` : undefined,
          }),
        );
        return;
      }
      if (item.grad && dtypeText !== 'f32') {
        this.report(
          error('E0302', `\`grad\` on input \`${item.name.text}\` of type ${dtypeText}`, item.grad, {
            label: 'only f32 inputs can be differentiated',
            secondary: item.dtype ? [{ span: item.dtype.span, message: `declared ${dtypeText} here` }] : undefined,
            help: `remove \`grad\`, or declare \`input ${item.name.text} : ${level} f32 grad\``,
          }),
        );
      }
      this.inputs.push({ name: item.name.text, level, dtype: dtypeText, grad: !!item.grad && dtypeText === 'f32' });
    } else if (item.kind === 'mask') {
      if (item.level.text !== 'token') {
        this.report(
          error('E0202', 'the mask is a token-level value', item.level.span, {
            label: `found \`${item.level.text}\``,
            help: `write \`mask ${item.name.text} : token\``,
          }),
        );
      }
      this.maskName = item.name.text;
    } else if (item.kind === 'param') {
      const v = constantValue(item.value);
      if (v === undefined) {
        this.report(
          error('E0404', `the default of param \`${item.name.text}\` is not a constant number`, item.value.span, {
            label: 'expected a number',
            help: 'write a number such as `0.2` or `1e-6`; compute derived values with `let`',
          }),
        );
        this.params.push({ name: item.name.text, default: Number.NaN });
      } else this.params.push({ name: item.name.text, default: v });
    }
  }

  private output(e: Expr, env: Env, what: string, at: Span): Node | null {
    const n = this.expr(e, env);
    if (!n) return null;
    if (n.type.level !== 'batch') {
      return this.report(
        error('E0402', `${what} must be a batch scalar, but this is ${showType(n.type)}`, e.span, {
          label: `one value per ${showLevel(n.type.level)}`,
          secondary: [{ span: at, message: 'declared here' }],
          help: 'reduce it, e.g. `mean(…)` (token-mean over the batch) or `mean(mean(… per seq) where length > 0)` (seq-mean-token-mean)',
        }),
      );
    }
    if (n.type.dtype === 'bool') {
      if (what === 'loss')
        return this.report(
          error('E0303', 'the loss is a bool', e.span, {
            label: 'expected a number',
            help: 'a loss is a number to minimise',
          }),
        );
      return this.b.cast(n, 'f32');
    }
    return n.type.dtype === 'f32' ? n : this.b.cast(n, 'f32');
  }

  /**
   * W0603: an arithmetic operation on finite constants whose value is not finite (`exp(1000)`,
   * `log(0)`, `0 / 0`), found by evaluating the constant parts of what the outputs read. Reported
   * where the value first stops being finite (`log(0)` in `log(0) * 0`), once per chain.
   */
  private warnNonFiniteConstants(roots: readonly Node[]): void {
    const value = new Map<number, number>();
    for (const n of topoSort(roots)) {
      if (n.op === 'const') {
        value.set(n.id, Number((n.args as { value: number | boolean }).value));
        continue;
      }
      if ((n.op !== 'unary' && n.op !== 'binary') || !n.src.every((s) => value.has(s.id))) continue;
      const args = n.src.map((s) => value.get(s.id)!);
      const fn = (n.args as { fn: string }).fn;
      const v =
        n.op === 'unary'
          ? INTERPRETED_UNARY[fn as keyof typeof INTERPRETED_UNARY](args[0]!)
          : INTERPRETED[fn as keyof typeof INTERPRETED](args[0]!, args[1]!);
      value.set(n.id, v);
      if (!Number.isFinite(v) && args.every(Number.isFinite) && n.span) {
        const text = n.span.file.text.slice(n.span.start, n.span.end);
        this.report(
          warning('W0603', `\`${text}\` is ${v}: a constant that is not a finite number`, n.span, {
            label: `${v} for every batch`,
            help: 'a loss, metric or gradient that reads it is not finite either (`credo run` refuses those); check the constant, or clamp it (`min(exp(x), 1e30)`)',
          }),
        );
      }
    }
  }

  /**
   * The `when` condition of an optional input: a batch-level bool that reads no input (so it can be
   * decided on a batch that leaves the input out), e.g. `when use_weighting != 0`.
   */
  private inputCondition(item: Extract<Item, { kind: 'input' }>, cond: Expr, env: Env): InputCondition | null {
    const n = this.expr(cond, env);
    if (!n || !this.requireBool(n, cond.span, 'the `when` condition of an input')) return null;
    const read = firstInput(n);
    if (n.type.level !== 'batch' || read !== null) {
      return this.report(
        error(
          'E0202',
          `the condition of optional input \`${item.name.text}\` must be one value for the batch, from params`,
          cond.span,
          {
            label: read !== null ? `reads input \`${read}\`` : `one value per ${showLevel(n.type.level)}`,
            help: 'write a condition over params and the clock (`when beta != 0`): it decides whether a batch may leave the input out, before any input is read',
          },
        ),
      );
    }
    const fill = this.inputFill(item);
    if (!fill) return null;
    return { text: cond.span.file.text.slice(cond.span.start, cond.span.end), span: cond.span, node: n, fill };
  }

  /** `else FILL` of an optional input: a number, or another (required) input of the same level and type. */
  private inputFill(item: Extract<Item, { kind: 'input' }>): InputCondition['fill'] | null {
    const f = item.fill;
    if (!f) return { value: 0 };
    const num =
      f.kind === 'num'
        ? f.value
        : f.kind === 'unary' && f.op === '-' && f.operand.kind === 'num'
          ? -f.operand.value
          : undefined;
    if (num !== undefined) return { value: num };
    const self = this.inputs.find((i) => i.name === item.name.text);
    const other = f.kind === 'name' && !f.member ? this.inputs.find((i) => i.name === f.name.text) : undefined;
    const optional =
      other && this.root.module.items.some((i) => i.kind === 'input' && i.name.text === other.name && i.when);
    if (!other || !self || other === self || optional || other.level !== self.level || other.dtype !== self.dtype) {
      return this.report(
        error(
          'E0202',
          `what optional input \`${item.name.text}\` reads when it is left out must be a number or another input like it`,
          f.span,
          {
            label:
              other && self
                ? `\`${other.name}\` is ${optional ? 'optional too' : other === self ? 'the input itself' : `${other.level} ${other.dtype}`}`
                : 'expected a number or an input name',
            help: self
              ? `write \`else 0\`, or \`else NAME\` with a required ${self.level} ${self.dtype} input (e.g. \`else old_logp\`)`
              : undefined,
          },
        ),
      );
    }
    return { input: other.name };
  }

  /** A `require` item: a bool at any level but the vocabulary's, counted where it is false. */
  private requirement(item: Extract<Item, { kind: 'require' }>, env: Env): Requirement | null {
    const n = this.expr(item.value, env);
    if (!n || !this.requireBool(n, item.value.span, '`require`')) return null;
    const level = n.type.level;
    if (level === 'vocab') {
      return this.report(
        error('E0203', '`require` over the vocabulary', item.value.span, {
          label: 'one value per token and vocabulary entry',
          help: 'reduce over the vocabulary first, e.g. `require max(logits per token) < 1e30`',
        }),
      );
    }
    const e = item.value;
    const literal = (x: Expr) => (x.kind === 'num' ? x.value : undefined);
    const isGroupSize = (x: Expr) => x.kind === 'name' && x.name.text === 'group_size';
    const k =
      e.kind === 'binary' && e.op === '=='
        ? isGroupSize(e.left)
          ? literal(e.right)
          : isGroupSize(e.right)
            ? literal(e.left)
            : undefined
        : undefined;
    const failing = this.b.reduce(
      'sum',
      this.b.cast(this.b.unary('not', n), 'f32'),
      'batch',
      undefined,
      item.value.span,
    );
    return {
      text: item.value.span.file.text.slice(item.value.span.start, item.value.span.end),
      span: item.span,
      level,
      failing,
      ...(k !== undefined && Number.isSafeInteger(k) && k >= 1 ? { groupSize: k } : {}),
    };
  }

  /** Lowers a `let` of a scope once (memoised), reporting recursion. */
  letValue(scope: Scope, name: string, useSpan: Span): Node | null {
    const key = `${scope.name}\u0000${name}`;
    const memo = this.lets.get(key);
    const decl = scope.decls.get(name) as Extract<Decl, { kind: 'let' }>;
    if (memo === 'busy') {
      this.lets.set(key, null);
      return this.report(
        error('E0104', `\`${name}\` is defined in terms of itself`, useSpan, {
          label: 'used here while it is being defined',
          secondary: decl.name.span !== useSpan ? [{ span: decl.name.span, message: 'defined here' }] : undefined,
          help: 'a `let` cannot depend on itself; for running sums over tokens use `cumsum`, `discounted` or `scan`',
        }),
      );
    }
    if (memo !== undefined) return memo;
    this.lets.set(key, 'busy');
    for (const dep of letsBefore(scope, name, (d) => !this.lets.has(`${scope.name}\u0000${d}`)))
      this.letValue(scope, dep, scope.decls.get(dep)!.name.span);
    const n = this.expr(decl.value, { scope, locals: new Map(), defStack: [] });
    if (this.lets.get(key) === 'busy') this.lets.set(key, n);
    return this.lets.get(key) as Node | null;
  }

  expr(e: Expr, env: Env): Node | null {
    switch (e.kind) {
      case 'num':
        return this.b.constant(e.value, 'f32', e.span);
      case 'bool':
        return this.b.constant(e.value ? 1 : 0, 'bool', e.span);
      case 'name':
        return this.name(e, env);
      case 'unary': {
        const x = this.expr(e.operand, env);
        if (!x) return null;
        if (e.op === 'not') return this.requireBool(x, e.operand.span, '`not`') ? this.b.unary('not', x, e.span) : null;
        if (!this.requireNumber(x, e.operand.span, 'unary `-`')) return null;
        if (x.op === 'const') return this.b.constant(-(x.args as { value: number }).value, x.type.dtype, e.span);
        return this.b.unary('neg', x, e.span);
      }
      case 'binary':
        return this.binary(e, env);
      case 'call':
        return this.call(e, env);
    }
  }

  /**
   * A chain of binary operators, left operands first. The left spine (`a + b + … + z` parses as
   * `((a + b) + …) + z`) is walked with a loop, so a flat expression of any length never nests
   * calls; right operands nest only as deep as the source's brackets (grammar/nesting.ts).
   */
  private binary(e: Extract<Expr, { kind: 'binary' }>, env: Env): Node | null {
    const spine: Extract<Expr, { kind: 'binary' }>[] = [];
    let leftmost: Expr = e;
    while (leftmost.kind === 'binary') {
      spine.push(leftmost);
      leftmost = leftmost.left;
    }
    let acc = this.expr(leftmost, env);
    for (let i = spine.length - 1; i >= 0; i--) {
      const b = this.expr(spine[i].right, env); // checked even when the left failed: it reports its own errors
      acc = acc && b ? this.combine(spine[i], acc, b) : null;
    }
    return acc;
  }

  private combine(e: Extract<Expr, { kind: 'binary' }>, a: Node, b: Node): Node | null {
    const fn = BINARY[e.op];
    if (fn === 'and' || fn === 'or') {
      if (!this.requireBool(a, e.left.span, `\`${e.op}\``) || !this.requireBool(b, e.right.span, `\`${e.op}\``))
        return null;
    } else if ((fn === 'eq' || fn === 'ne') && a.type.dtype === 'bool' && b.type.dtype === 'bool') {
      // comparing two bools is fine
    } else if (a.type.dtype === 'bool' || b.type.dtype === 'bool') {
      const span = a.type.dtype === 'bool' ? e.left.span : e.right.span;
      return this.report(
        error('E0301', `\`${e.op}\` mixes a bool and a number`, span, {
          label: 'this is a bool',
          secondary: [{ span: e.opSpan, message: 'needs numbers' }],
          help: 'turn the condition into a number with `where(cond, 1, 0)` or `f32(cond)`',
        }),
      );
    }
    if (a.op === 'const' && b.op === 'const' && !['and', 'or'].includes(fn)) {
      const folded = foldConst(fn, (a.args as { value: number }).value, (b.args as { value: number }).value);
      if (folded !== undefined)
        return this.b.constant(
          folded.value,
          folded.bool ? 'bool' : a.type.dtype === 'i32' && b.type.dtype === 'i32' ? 'i32' : 'f32',
          e.span,
        );
    }
    return this.b.binary(fn, a, b, e.span);
  }

  requireNumber(x: Node, span: Span, what: string): boolean {
    if (x.type.dtype !== 'bool') return true;
    this.report(
      error('E0301', `${what} expects a number, but this is a bool`, span, {
        label: 'a bool',
        help: 'turn the condition into a number with `where(cond, 1, 0)` or `f32(cond)`',
      }),
    );
    return false;
  }

  requireBool(x: Node, span: Span, what: string): boolean {
    if (x.type.dtype === 'bool') return true;
    this.report(
      error('E0301', `${what} expects a bool, but this is ${x.type.dtype}`, span, {
        label: 'a number',
        help: 'compare it to get a bool, e.g. `x > 0`',
      }),
    );
    return false;
  }

  private name(e: Extract<Expr, { kind: 'name' }>, env: Env): Node | null {
    const text = e.name.text;
    if (e.member) {
      const mod = env.scope.imports.get(text);
      if (!mod) return this.notAModule(e.name, env);
      if (mod.scope.decls.get(e.member.text)?.kind !== 'def') {
        const s = closest(
          e.member.text,
          [...mod.scope.decls.values()].filter((d) => d.kind === 'def').map((d) => d.name.text),
        );
        return this.report(
          error('E0101', `module \`${text}\` has no function \`${e.member.text}\``, e.member.span, {
            label: 'not in the module',
            help: s ? `did you mean \`${text}.${s}\`?` : undefined,
          }),
        );
      }
      return this.report(
        error('E0106', `\`${text}.${e.member.text}\` is a function of module \`${text}\`, not a value`, e.span, {
          label: 'call it with arguments',
          help: `write \`${text}.${e.member.text}(…)\``,
        }),
      );
    }
    const local = env.locals.get(text);
    if (local) return local;
    const decl = env.scope.decls.get(text);
    if (decl) {
      switch (decl.kind) {
        case 'param':
          return this.b.graph.node('param', { dtype: 'f32', level: 'batch' }, [], { name: text }, e.span);
        case 'input': {
          const d = this.inputs.find((i) => i.name === text);
          if (!d) return null; // its declaration was reported
          return this.b.graph.node('input', { dtype: d.dtype, level: d.level }, [], { name: text }, e.span);
        }
        case 'mask':
          return this.b.graph.node('mask', { dtype: 'bool', level: 'token' }, [], {}, e.span);
        case 'let':
          if (env.scope === this.root) this.usedLets.add(text);
          return this.letValue(env.scope, text, e.name.span);
        case 'def':
          return this.report(
            error('E0106', `\`${text}\` is a function, not a value`, e.span, {
              label: 'used as a value',
              secondary: [{ span: decl.name.span, message: 'defined here' }],
              help: `call it: \`${text}(${decl.params.map((p) => p.text).join(', ')})\``,
            }),
          );
      }
    }
    if ((BUILTIN_VALUES as readonly string[]).includes(text)) return this.builtinValue(text as BuiltinValue, e.span);
    if (env.scope.imports.has(text)) {
      return this.report(
        error('E0106', `\`${text}\` is a module, not a value`, e.span, {
          label: 'a module',
          help: `call one of its functions: \`${text}.NAME(…)\``,
        }),
      );
    }
    if (isFunctionName(text)) {
      return this.report(
        error('E0106', `\`${text}\` is a built-in function, not a value`, e.span, {
          label: 'missing arguments',
          help: `call it: \`${text}(…)\``,
        }),
      );
    }
    return this.unknown(e.name, env);
  }

  /** `x.f` where `x` is not an imported module. */
  private notAModule(id: { text: string; span: Span }, env: Env): null {
    const decl = env.locals.has(id.text) ? 'local value' : env.scope.decls.get(id.text)?.kind;
    if (!decl) return this.unknown(id, env);
    return this.report(
      error('E0106', `\`${id.text}\` is ${/^[aeiou]/.test(decl) ? 'an' : 'a'} ${decl}, not a module`, id.span, {
        label: 'used as a module',
        help: `\`NAME.f(…)\` calls function f of an imported module, e.g. \`import kl\` then \`kl.k3(logp, ref_logp)\``,
      }),
    );
  }

  unknown(id: { text: string; span: Span }, env: Env, functions = false): null {
    if (AMBIGUOUS[id.text]) {
      return this.report(
        error('E0101', `unknown name \`${id.text}\``, id.span, {
          label: 'ambiguous, so not built in',
          help: AMBIGUOUS[id.text],
        }),
      );
    }
    const candidates = [
      ...env.locals.keys(),
      ...env.scope.decls.keys(),
      ...env.scope.imports.keys(),
      ...(functions ? allBuiltinNames() : BUILTIN_VALUES),
    ];
    const suggestion = closest(id.text, candidates);
    const isLevelWord = (LEVELS as readonly string[]).includes(id.text);
    return this.report(
      error('E0101', `unknown name \`${id.text}\``, id.span, {
        label: 'not defined',
        help: suggestion
          ? `did you mean \`${suggestion}\`?`
          : isLevelWord
            ? `levels are written after \`per\` inside a reduction, e.g. \`sum(x per ${id.text})\``
            : functions
              ? `define it, e.g. \`def ${id.text}(x) = …\`, or import the stdlib module that has it`
              : `declare it, e.g. \`input ${id.text} : token\` or \`let ${id.text} = …\``,
      }),
    );
  }

  private builtinValue(which: BuiltinValue, span: Span): Node {
    const g = this.b.graph;
    switch (which) {
      case 'step':
      case 'total_steps':
        return g.node('clock', { dtype: 'f32', level: 'batch' }, [], { which }, span);
      case 'pi':
        return this.b.constant(Math.PI, 'f32', span);
      case 'position':
        return g.node('size', { dtype: 'f32', level: 'token' }, [], { which }, span);
      case 'vocab_index':
        return vocabIndex(this.b, span);
      case 'length':
        return g.node('size', { dtype: 'f32', level: 'seq' }, [], { which }, span);
      case 'group_size':
        return g.node('size', { dtype: 'f32', level: 'group' }, [], { which }, span);
      default:
        return g.node('size', { dtype: 'f32', level: 'batch' }, [], { which }, span);
    }
  }

  private call(e: Extract<Expr, { kind: 'call' }>, env: Env): Node | null {
    const fname = e.callee.text;
    if (e.member) {
      const mod = env.scope.imports.get(fname);
      if (!mod) return this.notAModule(e.callee, env);
      const def = mod.scope.decls.get(e.member.text);
      if (!def || def.kind !== 'def') {
        const s = closest(
          e.member.text,
          [...mod.scope.decls.values()].filter((d) => d.kind === 'def').map((d) => d.name.text),
        );
        return this.report(
          error('E0101', `module \`${fname}\` has no function \`${e.member.text}\``, e.member.span, {
            label: 'not in the module',
            help: s ? `did you mean \`${fname}.${s}\`?` : undefined,
          }),
        );
      }
      return this.inline(def, mod.scope, e, env);
    }
    if (!env.locals.has(fname)) {
      const decl = env.scope.decls.get(fname);
      if (decl?.kind === 'def') return this.inline(decl, env.scope, e, env);
      if (decl) {
        return this.report(
          error('E0106', `\`${fname}\` is a ${decl.kind}, not a function`, e.callee.span, {
            label: 'called here',
            secondary: [{ span: decl.name.span, message: 'defined here' }],
            help: 'only `def`s and built-in functions can be called',
          }),
        );
      }
    } else {
      return this.report(
        error('E0106', `\`${fname}\` is a value, not a function`, e.callee.span, { label: 'called here' }),
      );
    }
    if (!isFunctionName(fname)) return this.unknown(e.callee, env, true);
    return lowerBuiltinCall(this, e, env);
  }

  private inline(
    def: Extract<Decl, { kind: 'def' }>,
    defScope: Scope,
    e: Extract<Expr, { kind: 'call' }>,
    env: Env,
  ): Node | null {
    const qualified = `${defScope.name}.${def.name.text}`;
    if (env.defStack.includes(qualified)) {
      return this.report(
        error('E0104', `\`${def.name.text}\` calls itself`, e.callee.span, {
          label: 'recursive call',
          secondary: [{ span: def.name.span, message: 'defined here' }],
          help: '`def`s are inlined, so they cannot be recursive; use a scan (`cumsum`, `discounted`, `scan`) for recurrences',
        }),
      );
    }
    if (e.per || e.where) {
      return this.report(
        error(
          'E0105',
          `\`${def.name.text}\` is a \`def\`, which takes no \`per\`/\`where\``,
          e.per?.span ?? e.where!.span,
          { label: 'not allowed here', help: 'pass the level-specific parts as arguments' },
        ),
      );
    }
    if (e.args.length !== def.params.length) {
      return this.report(
        error(
          'E0105',
          `\`${def.name.text}\` takes ${def.params.length} argument${def.params.length === 1 ? '' : 's'}, got ${e.args.length}`,
          e.span,
          {
            label: 'wrong number of arguments',
            secondary: [
              {
                span: def.name.span,
                message: `defined as \`${def.name.text}(${def.params.map((p) => p.text).join(', ')})\``,
              },
            ],
          },
        ),
      );
    }
    const args = e.args.map((a) => this.expr(a, env));
    if (args.some((a) => a === null)) return null;
    // A body's value depends only on the def and its arguments (nodes are hash-consed), so each
    // (def, arguments) pair is lowered once: `def f1(x) = f0(x) + f0(x)` nested 40 deep is linear.
    const key = `${qualified}(${args.map((a) => a!.id).join(',')})`;
    const done = this.inlined.get(key);
    if (done !== undefined) return done;
    const locals = new Map(def.params.map((p, i) => [p.text, args[i]!] as const));
    const before = this.diagnostics.length;
    const result = this.expr(def.value, { scope: defScope, locals, defStack: [...env.defStack, qualified] });
    // an error inside the body also points at the call that brought it there
    for (let i = before; i < this.diagnostics.length; i++) {
      const d = this.diagnostics[i];
      const secondary = [...(d.secondary ?? []), { span: e.span, message: `in this call of \`${def.name.text}\`` }];
      this.diagnostics[i] = { ...d, secondary };
    }
    this.inlined.set(key, result);
    return result;
  }
}

/** Value of a constant expression (numbers and arithmetic), or undefined. */
export function constantValue(e: Expr): number | undefined {
  switch (e.kind) {
    case 'num':
      return e.value;
    case 'unary': {
      const v = e.op === '-' ? constantValue(e.operand) : undefined;
      return v === undefined ? undefined : -v;
    }
    case 'binary': {
      // the left spine by a loop, as Checker.binary does: a long flat sum is no deeper than one term
      const spine: Extract<Expr, { kind: 'binary' }>[] = [];
      let leftmost: Expr = e;
      while (leftmost.kind === 'binary') {
        spine.push(leftmost);
        leftmost = leftmost.left;
      }
      let acc = constantValue(leftmost);
      for (let i = spine.length - 1; i >= 0 && acc !== undefined; i--) {
        const b = constantValue(spine[i].right);
        const r = b === undefined ? undefined : foldConst(BINARY[spine[i].op], acc, b);
        acc = r && !r.bool ? r.value : undefined;
      }
      return acc;
    }
    default:
      return undefined;
  }
}

/** The arithmetic the checker folds when both operands are literals (docs/language.md §4). */
const FOLDED: ReadonlySet<BinaryOp> = new Set(['add', 'sub', 'mul', 'div', 'pow']);

/** A folded literal, computed by the interpreter's own arithmetic; undefined for an op that is not folded. */
function foldConst(fn: BinaryOp, a: number, b: number): { value: number; bool: boolean } | undefined {
  return FOLDED.has(fn) ? { value: INTERPRETED[fn](a, b), bool: false } : undefined;
}

/** The name of an input the value reads, or null when it reads none. */
function firstInput(root: Node): string | null {
  const input = topoSort([root]).find((n) => n.op === 'input');
  return input ? (input.args as { name: string }).name : null;
}

/**
 * CST → AST. Runs only on a CST without syntax errors, so every expected child is present;
 * a missing one is a compiler bug (InternalError).
 */
import type { CstNode, IToken } from 'chevrotain';
import { InternalError } from '../../core/diagnostics/diagnostic.js';
import { joinSpans, type SourceFile, type Span } from '../../core/source/source-file.js';
import type { BinaryOp, Expr, Ident, Item, Module } from './ast.js';

type Children = Record<string, (CstNode | IToken)[] | undefined>;

export function buildAst(cst: CstNode, file: SourceFile): Module {
  const b = new Builder(file);
  return { file, items: (kids(cst).item ?? []).map((n) => b.item(n as CstNode)) };
}

function kids(n: CstNode): Children {
  return n.children as Children;
}

class Builder {
  constructor(private readonly file: SourceFile) {}

  private tokenSpan(t: IToken): Span {
    return this.file.span(t.startOffset, t.endOffset! + 1);
  }

  private ident(t: IToken): Ident {
    return { text: t.image, span: this.tokenSpan(t) };
  }

  private token(c: Children, label: string, i = 0): IToken {
    const t = c[label]?.[i];
    if (!t || !('image' in t)) throw new InternalError('ast-builder', `missing token '${label}'`);
    return t;
  }

  private node(c: Children, label: string, i = 0): CstNode {
    const n = c[label]?.[i];
    if (!n || !('children' in n)) throw new InternalError('ast-builder', `missing node '${label}'`);
    return n;
  }

  /** Span from the first to the last token under a CST node. */
  private spanOf(n: CstNode): Span {
    let first: IToken | undefined;
    let last: IToken | undefined;
    const visit = (x: CstNode | IToken) => {
      if ('image' in x) {
        if (!first || x.startOffset < first.startOffset) first = x;
        if (!last || x.startOffset > last.startOffset) last = x;
      } else for (const list of Object.values(x.children)) for (const y of list ?? []) visit(y as CstNode | IToken);
    };
    visit(n);
    if (!first || !last) throw new InternalError('ast-builder', `empty node '${n.name}'`);
    return this.file.span(first.startOffset, last.endOffset! + 1);
  }

  item(n: CstNode): Item {
    const decl = Object.values(n.children)[0]![0] as CstNode;
    const c = kids(decl);
    const span = this.spanOf(decl);
    const name = () => this.ident(this.token(c, 'name'));
    const value = () => this.expr(this.node(c, 'value'));
    switch (decl.name) {
      case 'objectiveDecl':
        return { kind: 'objective', name: name(), span };
      case 'importDecl':
        return { kind: 'import', name: name(), span };
      case 'paramDecl':
        return { kind: 'param', name: name(), value: value(), span };
      case 'inputDecl':
        return {
          kind: 'input',
          name: name(),
          level: this.ident(this.token(c, 'level')),
          axis: c.axis ? this.ident(this.token(c, 'axis')) : undefined,
          dtype: c.dtype ? this.ident(this.token(c, 'dtype')) : undefined,
          grad: c.grad ? this.tokenSpan(this.token(c, 'grad')) : undefined,
          when: c.condition ? this.expr(this.node(c, 'condition')) : undefined,
          fill: c.fill ? this.expr(this.node(c, 'fill')) : undefined,
          span,
        };
      case 'maskDecl':
        return { kind: 'mask', name: name(), level: this.ident(this.token(c, 'level')), span };
      case 'letDecl':
        return { kind: 'let', name: name(), value: value(), span };
      case 'defDecl':
        return {
          kind: 'def',
          name: name(),
          params: (c.params ?? []).map((t) => this.ident(t as IToken)),
          value: value(),
          span,
        };
      case 'lossDecl':
        return { kind: 'loss', value: value(), span, keyword: this.tokenSpan(this.token(c, 'Loss')) };
      case 'metricDecl':
        return { kind: 'metric', name: name(), value: value(), span };
      case 'exportDecl':
        return { kind: 'export', name: name(), value: value(), span };
      case 'requireDecl':
        return { kind: 'require', value: value(), span, keyword: this.tokenSpan(this.token(c, 'Require')) };
      default:
        throw new InternalError('ast-builder', `unknown item '${decl.name}'`);
    }
  }

  expr(n: CstNode): Expr {
    const c = kids(n);
    switch (n.name) {
      case 'expr':
      case 'andExpr':
      case 'cmpExpr':
      case 'addExpr':
      case 'mulExpr':
        return this.leftFold(c);
      case 'notExpr':
      case 'unaryExpr': {
        const operand = this.expr(this.node(c, 'operand'));
        const opTok = (c.not ?? c.minus)?.[0] as IToken | undefined;
        if (!opTok) return operand;
        return {
          kind: 'unary',
          op: n.name === 'notExpr' ? 'not' : '-',
          operand,
          span: joinSpans(this.tokenSpan(opTok), operand.span),
        };
      }
      case 'powExpr': {
        const base = this.expr(this.node(c, 'base'));
        if (!c.exponent) return base;
        const exponent = this.expr(this.node(c, 'exponent'));
        return {
          kind: 'binary',
          op: '^',
          left: base,
          right: exponent,
          opSpan: this.tokenSpan(this.token(c, 'caret')),
          span: joinSpans(base.span, exponent.span),
        };
      }
      case 'primary':
        return this.primary(c, this.spanOf(n));
      default:
        throw new InternalError('ast-builder', `unknown expression node '${n.name}'`);
    }
  }

  private leftFold(c: Children): Expr {
    const operands = (c.operands ?? []).map((x) => this.expr(x as CstNode));
    const ops = (c.ops ?? []) as IToken[];
    let acc = operands[0];
    for (let i = 0; i < ops.length; i++) {
      const right = operands[i + 1];
      acc = {
        kind: 'binary',
        op: ops[i].image as BinaryOp,
        left: acc,
        right,
        opSpan: this.tokenSpan(ops[i]),
        span: joinSpans(acc.span, right.span),
      };
    }
    return acc;
  }

  private primary(c: Children, span: Span): Expr {
    if (c.number) return { kind: 'num', value: Number(this.token(c, 'number').image), span };
    if (c.bool) return { kind: 'bool', value: this.token(c, 'bool').image === 'true', span };
    if (c.inner) return { ...this.expr(this.node(c, 'inner')), span } as Expr;
    const callee = c.whereCall ? this.ident(this.token(c, 'whereCall')) : this.ident(this.token(c, 'name'));
    const member = c.member ? this.ident(this.token(c, 'member')) : undefined;
    if (!c.call) return { kind: 'name', name: callee, member, span };
    const a = kids(this.node(c, 'call'));
    return {
      kind: 'call',
      callee,
      member,
      args: (a.args ?? []).map((x) => this.expr(x as CstNode)),
      per: a.level ? this.ident(this.token(a, 'level')) : undefined,
      by: a.key ? this.expr(this.node(a, 'key')) : undefined,
      where: a.filter ? this.expr(this.node(a, 'filter')) : undefined,
      span,
      parenSpan: this.tokenSpan(this.token(a, 'lparen')),
    };
  }
}

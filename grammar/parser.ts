/**
 * tokens → CST. A chevrotain CstParser with error recovery, so several syntax errors are reported
 * in one pass. Precedence, loosest first: or, and, not, comparison, + -, * /, unary -, ^ (right).
 */
import { CstParser, type CstNode, type IToken } from 'chevrotain';
import * as T from './tokens.js';

class CredoParser extends CstParser {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  program = this.RULE('program', () => {
    this.MANY(() => this.SUBRULE(this.item));
  });

  item = this.RULE('item', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.objectiveDecl) },
      { ALT: () => this.SUBRULE(this.importDecl) },
      { ALT: () => this.SUBRULE(this.paramDecl) },
      { ALT: () => this.SUBRULE(this.inputDecl) },
      { ALT: () => this.SUBRULE(this.maskDecl) },
      { ALT: () => this.SUBRULE(this.letDecl) },
      { ALT: () => this.SUBRULE(this.defDecl) },
      { ALT: () => this.SUBRULE(this.lossDecl) },
      { ALT: () => this.SUBRULE(this.metricDecl) },
      { ALT: () => this.SUBRULE(this.exportDecl) },
      { ALT: () => this.SUBRULE(this.requireDecl) },
    ]);
  });

  objectiveDecl = this.RULE('objectiveDecl', () => {
    this.CONSUME(T.Objective);
    this.CONSUME(T.Ident, { LABEL: 'name' });
  });

  importDecl = this.RULE('importDecl', () => {
    this.CONSUME(T.Import);
    this.CONSUME(T.Ident, { LABEL: 'name' });
  });

  paramDecl = this.RULE('paramDecl', () => {
    this.CONSUME(T.Param);
    this.CONSUME(T.Ident, { LABEL: 'name' });
    this.CONSUME(T.Assign);
    this.SUBRULE(this.expr, { LABEL: 'value' });
  });

  inputDecl = this.RULE('inputDecl', () => {
    this.CONSUME(T.Input);
    this.CONSUME(T.Ident, { LABEL: 'name' });
    this.CONSUME(T.Colon);
    this.CONSUME2(T.Ident, { LABEL: 'level' });
    // `token x vocab`: an inner axis. `x` is an ordinary name, so it counts as one only before another name.
    this.OPTION3({
      GATE: () => this.LA(1).image === 'x' && this.LA(2).tokenType === T.Ident,
      DEF: () => {
        this.CONSUME4(T.Ident, { LABEL: 'cross' });
        this.CONSUME5(T.Ident, { LABEL: 'axis' });
      },
    });
    // NOTE: `mask` is also a name, so a following `mask NAME : token` item must not be read as a dtype;
    // neither is `when`, which starts the input's condition.
    this.OPTION({
      GATE: () => this.LA(1).tokenType !== T.Mask && this.LA(1).image !== 'when',
      DEF: () => this.CONSUME3(T.Ident, { LABEL: 'dtype' }),
    });
    this.OPTION2(() => this.CONSUME(T.Grad, { LABEL: 'grad' }));
    // `when COND`: the batch may leave the input out where COND (over params) is false.
    this.OPTION4({
      GATE: () => this.LA(1).image === 'when',
      DEF: () => {
        this.CONSUME6(T.Ident, { LABEL: 'when' });
        this.SUBRULE(this.expr, { LABEL: 'condition' });
        // `else FILL`: what a batch without it reads (a number or another input; 0 when not given)
        this.OPTION5({
          GATE: () => this.LA(1).image === 'else',
          DEF: () => {
            this.CONSUME7(T.Ident, { LABEL: 'else' });
            this.SUBRULE2(this.expr, { LABEL: 'fill' });
          },
        });
      },
    });
  });

  maskDecl = this.RULE('maskDecl', () => {
    this.CONSUME(T.Mask);
    this.CONSUME(T.Ident, { LABEL: 'name' });
    this.CONSUME(T.Colon);
    this.CONSUME2(T.Ident, { LABEL: 'level' });
  });

  letDecl = this.RULE('letDecl', () => {
    this.CONSUME(T.Let);
    this.CONSUME(T.Ident, { LABEL: 'name' });
    this.CONSUME(T.Assign);
    this.SUBRULE(this.expr, { LABEL: 'value' });
  });

  defDecl = this.RULE('defDecl', () => {
    this.CONSUME(T.Def);
    this.CONSUME(T.Ident, { LABEL: 'name' });
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.CONSUME2(T.Ident, { LABEL: 'params' }) });
    this.CONSUME(T.RParen);
    this.CONSUME(T.Assign);
    this.SUBRULE(this.expr, { LABEL: 'value' });
  });

  lossDecl = this.RULE('lossDecl', () => {
    this.CONSUME(T.Loss);
    this.CONSUME(T.Assign);
    this.SUBRULE(this.expr, { LABEL: 'value' });
  });

  metricDecl = this.RULE('metricDecl', () => {
    this.CONSUME(T.Metric);
    this.CONSUME(T.Ident, { LABEL: 'name' });
    this.CONSUME(T.Assign);
    this.SUBRULE(this.expr, { LABEL: 'value' });
  });

  requireDecl = this.RULE('requireDecl', () => {
    this.CONSUME(T.Require);
    this.SUBRULE(this.expr, { LABEL: 'value' });
  });

  exportDecl = this.RULE('exportDecl', () => {
    this.CONSUME(T.Export);
    this.CONSUME(T.Ident, { LABEL: 'name' });
    this.CONSUME(T.Assign);
    this.SUBRULE(this.expr, { LABEL: 'value' });
  });

  expr = this.RULE('expr', () => {
    this.SUBRULE(this.andExpr, { LABEL: 'operands' });
    this.MANY(() => {
      this.CONSUME(T.Or, { LABEL: 'ops' });
      this.SUBRULE2(this.andExpr, { LABEL: 'operands' });
    });
  });

  andExpr = this.RULE('andExpr', () => {
    this.SUBRULE(this.notExpr, { LABEL: 'operands' });
    this.MANY(() => {
      this.CONSUME(T.And, { LABEL: 'ops' });
      this.SUBRULE2(this.notExpr, { LABEL: 'operands' });
    });
  });

  notExpr = this.RULE('notExpr', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Not, { LABEL: 'not' });
          this.SUBRULE(this.notExpr, { LABEL: 'operand' });
        },
      },
      { ALT: () => this.SUBRULE(this.cmpExpr, { LABEL: 'operand' }) },
    ]);
  });

  cmpExpr = this.RULE('cmpExpr', () => {
    this.SUBRULE(this.addExpr, { LABEL: 'operands' });
    this.OPTION(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.LessEq, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.GreaterEq, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.EqEq, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.NotEq, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.Less, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.Greater, { LABEL: 'ops' }) },
      ]);
      this.SUBRULE2(this.addExpr, { LABEL: 'operands' });
    });
  });

  addExpr = this.RULE('addExpr', () => {
    this.SUBRULE(this.mulExpr, { LABEL: 'operands' });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Plus, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.Minus, { LABEL: 'ops' }) },
      ]);
      this.SUBRULE2(this.mulExpr, { LABEL: 'operands' });
    });
  });

  mulExpr = this.RULE('mulExpr', () => {
    this.SUBRULE(this.unaryExpr, { LABEL: 'operands' });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Star, { LABEL: 'ops' }) },
        { ALT: () => this.CONSUME(T.Slash, { LABEL: 'ops' }) },
      ]);
      this.SUBRULE2(this.unaryExpr, { LABEL: 'operands' });
    });
  });

  unaryExpr = this.RULE('unaryExpr', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Minus, { LABEL: 'minus' });
          this.SUBRULE(this.unaryExpr, { LABEL: 'operand' });
        },
      },
      { ALT: () => this.SUBRULE(this.powExpr, { LABEL: 'operand' }) },
    ]);
  });

  powExpr = this.RULE('powExpr', () => {
    this.SUBRULE(this.primary, { LABEL: 'base' });
    this.OPTION(() => {
      this.CONSUME(T.Caret, { LABEL: 'caret' });
      this.SUBRULE(this.unaryExpr, { LABEL: 'exponent' });
    });
  });

  primary = this.RULE('primary', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.NumberLit, { LABEL: 'number' }) },
      { ALT: () => this.CONSUME(T.True, { LABEL: 'bool' }) },
      { ALT: () => this.CONSUME(T.False, { LABEL: 'bool' }) },
      {
        ALT: () => {
          this.CONSUME(T.LParen, { LABEL: 'lparen' });
          this.SUBRULE(this.expr, { LABEL: 'inner' });
          this.CONSUME(T.RParen, { LABEL: 'rparen' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Where, { LABEL: 'whereCall' });
          this.SUBRULE(this.callArgs, { LABEL: 'call' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Ident, { LABEL: 'name' });
          this.OPTION(() => {
            this.CONSUME(T.Dot);
            this.CONSUME2(T.Ident, { LABEL: 'member' });
          });
          this.OPTION2(() => this.SUBRULE2(this.callArgs, { LABEL: 'call' }));
        },
      },
    ]);
  });

  callArgs = this.RULE('callArgs', () => {
    this.CONSUME(T.LParen, { LABEL: 'lparen' });
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expr, { LABEL: 'args' }) });
    this.OPTION(() => {
      this.CONSUME(T.Per);
      this.CONSUME(T.Ident, { LABEL: 'level' });
      this.OPTION3(() => {
        this.CONSUME(T.By, { LABEL: 'by' });
        this.SUBRULE3(this.expr, { LABEL: 'key' });
      });
    });
    this.OPTION2(() => {
      this.CONSUME(T.Where, { LABEL: 'where' });
      this.SUBRULE2(this.expr, { LABEL: 'filter' });
    });
    this.CONSUME(T.RParen, { LABEL: 'rparen' });
  });
}

/** One shared instance: chevrotain parsers are built once and reset per input. */
export const parser = new CredoParser();

export function parseTokens(tokens: IToken[]): { cst: CstNode; errors: typeof parser.errors } {
  parser.input = tokens;
  const cst = parser.program();
  return { cst, errors: [...parser.errors] };
}

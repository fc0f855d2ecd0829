/**
 * The token table of the Credo language. Keywords use `longer_alt: Ident` so `lossy` is a name;
 * the soft keywords `mask` and `require` are also names, so `x * mask` works.
 */
import { createToken, Lexer, type TokenType } from 'chevrotain';

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED });
export const Comment = createToken({ name: 'Comment', pattern: /#[^\n]*/, group: Lexer.SKIPPED });

export const Ident = createToken({ name: 'Ident', pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: 'a name' });
export const NumberLit = createToken({
  name: 'NumberLit',
  pattern: /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/,
  label: 'a number',
});

function keyword(word: string, soft = false): TokenType {
  return createToken({
    name: word[0].toUpperCase() + word.slice(1),
    pattern: new RegExp(word),
    longer_alt: Ident,
    label: `\`${word}\``,
    ...(soft ? { categories: [Ident] } : {}),
  });
}

export const Objective = keyword('objective');
export const Param = keyword('param');
export const Input = keyword('input');
export const Mask = keyword('mask', true);
export const Require = keyword('require', true);
export const Let = keyword('let');
export const Def = keyword('def');
export const Loss = keyword('loss');
export const Metric = keyword('metric');
export const Export = keyword('export');
export const Import = keyword('import');
export const Per = keyword('per');
export const By = keyword('by');
export const Where = keyword('where');
export const And = keyword('and');
export const Or = keyword('or');
export const Not = keyword('not');
export const True = keyword('true');
export const False = keyword('false');
export const Grad = keyword('grad');

const op = (name: string, pattern: RegExp, label: string) => createToken({ name, pattern, label });
export const LessEq = op('LessEq', /<=/, '`<=`');
export const GreaterEq = op('GreaterEq', />=/, '`>=`');
export const EqEq = op('EqEq', /==/, '`==`');
export const NotEq = op('NotEq', /!=/, '`!=`');
export const Less = op('Less', /</, '`<`');
export const Greater = op('Greater', />/, '`>`');
export const Assign = op('Assign', /=/, '`=`');
export const Plus = op('Plus', /\+/, '`+`');
export const Minus = op('Minus', /-/, '`-`');
export const Star = op('Star', /\*/, '`*`');
export const Slash = op('Slash', /\//, '`/`');
export const Caret = op('Caret', /\^/, '`^`');
export const LParen = op('LParen', /\(/, '`(`');
export const RParen = op('RParen', /\)/, '`)`');
export const Comma = op('Comma', /,/, '`,`');
export const Colon = op('Colon', /:/, '`:`');
export const Dot = op('Dot', /\./, '`.`');

/** Order matters: keywords before Ident, longer operators before their prefixes. */
export const allTokens: TokenType[] = [
  WhiteSpace,
  Comment,
  Objective,
  Param,
  Input,
  Mask,
  Require,
  Let,
  Def,
  Loss,
  Metric,
  Export,
  Import,
  Per,
  By,
  Where,
  And,
  Or,
  Not,
  True,
  False,
  Grad,
  Ident,
  NumberLit,
  LessEq,
  GreaterEq,
  EqEq,
  NotEq,
  Less,
  Greater,
  Assign,
  Plus,
  Minus,
  Star,
  Slash,
  Caret,
  LParen,
  RParen,
  Comma,
  Colon,
  Dot,
];

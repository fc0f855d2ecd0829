/**
 * The registry of diagnostic codes. Every code has a test file in tests/errors/ whose expected
 * span is marked in the source.
 */
export const CODES = {
  E0001: 'syntax error',
  E0002: 'unclosed bracket',
  E0003: 'unexpected character',
  E0004: 'expression nested too deeply',
  E0101: 'unknown name',
  E0102: 'duplicate definition',
  E0103: 'import not found',
  E0104: 'recursive definition',
  E0105: 'wrong number of arguments',
  E0106: 'not a value',
  E0201: 'reduction to a finer level',
  E0202: 'level mismatch',
  E0203: 'a token x vocab value where one value per token is needed',
  E0301: 'bool and number mixed',
  E0302: '`grad` on a non-f32 input',
  E0303: 'type mismatch',
  E0401: 'missing loss',
  E0402: 'non-scalar output',
  E0403: 'duplicate loss',
  E0404: 'invalid parameter default',
  E0501: 'unknown parameter in --set',
  E0502: 'bad value in --set',
  W0601: 'loss does not depend on any `grad` input',
  W0602: 'unused definition',
  W0603: 'constant that is not finite',
} as const;

export type Code = keyof typeof CODES;

/** WGSL shared by every kernel: the three bindings (slots.ts) and the math functions WGSL lacks. */
export const PRELUDE = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> D: array<f32>;
@group(0) @binding(1) var<storage, read> I: array<u32>;
@group(0) @binding(2) var<storage, read_write> G: array<f32>;

fn sec(k: u32) -> u32 { return I[7u + k]; }
// an f32 from its bits at run time (constant NaN or infinity would be rejected)
fn bits_(b: u32) -> f32 { return bitcast<f32>(b + I[0] * 0u); }


// Branch-free helpers: every lane of a SIMD group computes both sides anyway when they diverge,
// and select keeps the right one (a NaN or infinity on the unused side is dropped).
// log(1 + x) to a few ulps: on -0.5 < x < 1 the series 2·atanh(s), s = x / (2 + x), |s| ≤ 1/3
// (terms to s^15, the rest under 2e-9 relative), since WGSL's log is only held to 2^-21 absolute
// near 1 (a relative error of 5e-3 at x = 1e-4 for log(1 + x) or Kahan's log(u)·x / (u − 1));
// elsewhere log(1 + x), where 1 + x is exact (x ≤ −0.5) or rounds by under 1e-7 of the log (x ≥ 1)
fn log1p_(x: f32) -> f32 {
  let s = x / (2.0 + x);
  let z = s * s;
  let series = 2.0 * s * (1.0 + z * (1.0 / 3.0 + z * (0.2 + z * (1.0 / 7.0 + z * (1.0 / 9.0 + z * (1.0 / 11.0 + z * (1.0 / 13.0 + z / 15.0)))))));
  return select(log(1.0 + x), series, x > -0.5 && x < 1.0);
}
// exp(x) − 1 to a few ulps: on |x| < 0.5 its Taylor series to x^9 (the rest under 6e-10 relative),
// elsewhere exp(x) − 1, which cancels at most 2.5 of exp's bits there
fn expm1_(x: f32) -> f32 {
  let series = x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0 + x * (1.0 / 5040.0 + x * (1.0 / 40320.0 + x / 362880.0))))))));
  return select(exp(x) - 1.0, series, abs(x) < 0.5);
}
fn sigmoid_(x: f32) -> f32 {
  let e = exp(-abs(x));
  let s = 1.0 / (1.0 + e);
  return select(e * s, s, x >= 0.0);
}
fn softplus_(x: f32) -> f32 { return max(x, 0.0) + log1p_(exp(-abs(x))); }
fn tanh_(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }
// pow with the real-number semantics of Math.pow: negative bases with integer exponents
fn pow_(x: f32, y: f32) -> f32 {
  let p = pow(abs(x), y);
  let whole = floor(y) == y;
  let odd = whole && floor(y * 0.5) * 2.0 != y;
  let negative = select(select(bits_(0x7fc00000u), p, whole), -p, odd);
  return select(select(negative, p, x >= 0.0), 1.0, y == 0.0);
}
// the same on four tokens at once
fn log1p4_(x: vec4f) -> vec4f {
  let s = x / (2.0 + x);
  let z = s * s;
  let series = 2.0 * s * (1.0 + z * (1.0 / 3.0 + z * (0.2 + z * (1.0 / 7.0 + z * (1.0 / 9.0 + z * (1.0 / 11.0 + z * (1.0 / 13.0 + z / 15.0)))))));
  return select(log(1.0 + x), series, (x > vec4f(-0.5)) & (x < vec4f(1.0)));
}
fn expm14_(x: vec4f) -> vec4f {
  let series = x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0 + x * (1.0 / 5040.0 + x * (1.0 / 40320.0 + x / 362880.0))))))));
  return select(exp(x) - 1.0, series, abs(x) < vec4f(0.5));
}
fn sigmoid4_(x: vec4f) -> vec4f {
  let e = exp(-abs(x));
  let s = 1.0 / (1.0 + e);
  return select(e * s, s, x >= vec4f(0.0));
}
fn softplus4_(x: vec4f) -> vec4f { return max(x, vec4f(0.0)) + log1p4_(exp(-abs(x))); }
fn tanh4_(x: vec4f) -> vec4f { return tanh(clamp(x, vec4f(-15.0), vec4f(15.0))); }
fn pow4_(x: vec4f, y: vec4f) -> vec4f {
  let p = pow(abs(x), y);
  let whole = floor(y) == y;
  let odd = whole & (floor(y * 0.5) * 2.0 != y);
  let negative = select(select(vec4f(bits_(0x7fc00000u)), p, whole), -p, odd);
  return select(select(negative, p, x >= vec4f(0.0)), vec4f(1.0), y == vec4f(0.0));
}
`;

/** The helper functions of the prelude by name, each with the comment lines above it. */
const HELPERS: readonly { readonly name: string; readonly text: string }[] = (() => {
  const out: { name: string; text: string }[] = [];
  let pending: string[] = [];
  const lines = PRELUDE.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fn = /^fn (\w+)\(/.exec(line);
    if (!fn) {
      pending = line.startsWith('//') ? [...pending, line] : [];
      continue;
    }
    const body = [line];
    while (!body[body.length - 1].startsWith('}') && !/\}\s*$/.test(body[body.length - 1])) body.push(lines[++i]);
    out.push({ name: fn[1], text: [...pending, ...body].join('\n') });
    pending = [];
  }
  return out;
})();

/**
 * The prelude a kernel needs: the bindings and the helper functions its code (or a needed helper)
 * calls. Shader compile time grows with the text (about 1.4 ms per KB through Dawn on llvmpipe, measured 2026-11-29),
 * so kernels do not carry helpers they never call.
 */
export function preludeFor(body: string): string {
  const needed = new Set<string>();
  let text = body;
  for (let grew = true; grew;) {
    grew = false;
    for (const h of HELPERS) {
      if (!needed.has(h.name) && new RegExp(`\\b${h.name}\\(`).test(text)) {
        needed.add(h.name);
        text += h.text;
        grew = true;
      }
    }
  }
  const head = PRELUDE.slice(0, PRELUDE.indexOf('\nfn '));
  return `${head}\n${HELPERS.filter((h) => needed.has(h.name))
    .map((h) => h.text)
    .join('\n')}\n`;
}
